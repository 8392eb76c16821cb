"""Reel Studio: the use cases behind the template editor's page (open a campaign, check it as
the designer types, draw one frame, show the timeline and its cost, save, add assets)."""
