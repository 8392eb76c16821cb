"""Production: the job model, the steps (plan, render_recipient, finalize) and their runners."""
