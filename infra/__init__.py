"""Reel's CDK app: the AWS stack (`make synth`, `make deploy`)."""
