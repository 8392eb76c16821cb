"""Tests of the CDK app in infra/ (synthesized offline, linted with cfn-lint)."""
