"""CDK entry point: `python infra/app.py` (or `cdk synth` in infra/) writes infra/cdk.out."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python infra/app.py` puts infra/, not the root, on sys.path
    sys.path.insert(0, str(ROOT))

import aws_cdk as cdk  # noqa: E402

from chalicelib.settings import Settings  # noqa: E402
from infra import deps  # noqa: E402
from infra.retention import campaigns_retention  # noqa: E402
from infra.stack import ReelStack  # noqa: E402

OUTDIR = ROOT / "infra" / "cdk.out"
#: The campaigns the stack serves (context `campaigns`): their `retention:` sets the TTL and
#: lifecycle rules (infra/retention.py).
CAMPAIGNS = ROOT / "examples"
#: A PUBLIC key whose private half was never saved: synth works out of the box with it, but
#: nothing can sign URLs it accepts. `make deploy` refuses to run without your own key.
EXAMPLE_PUBLIC_KEY = ROOT / "infra" / "keys" / "example-public.pem"


def _public_key(app: cdk.App) -> str:
    """The CloudFront public key (PEM): context public_key / public_key_file, or env, or example."""
    pem = app.node.try_get_context("public_key") or os.environ.get("REEL_CLOUDFRONT_PUBLIC_KEY")
    path = app.node.try_get_context("public_key_file") or os.environ.get(
        "REEL_CLOUDFRONT_PUBLIC_KEY_FILE"
    )
    if not pem and path:
        pem = Path(path).expanduser().read_text()
    if not pem:
        print(
            f"no CloudFront public key given: using {EXAMPLE_PUBLIC_KEY.relative_to(ROOT)}, "
            "which no one can sign with (see infra/README.md)",
            file=sys.stderr,
        )
        pem = EXAMPLE_PUBLIC_KEY.read_text()
    if "PRIVATE KEY" in pem or "BEGIN PUBLIC KEY" not in pem:
        raise SystemExit("the CloudFront key must be a PEM public key (BEGIN PUBLIC KEY)")
    return pem.strip() + "\n"


def build(
    outdir: str | Path | None = None,
    *,
    context: dict[str, Any] | None = None,
    api_layer: Path | None = None,
) -> cdk.App:
    """The CDK app with Reel's stack (`reel-<stage>`); call `.synth()` to write the assembly."""
    app = cdk.App(outdir=str(outdir) if outdir else None, context=context)
    stage = str(app.node.try_get_context("stage") or "dev")
    defaults = Settings.model_fields
    ReelStack(
        app,
        f"reel-{stage}",
        stage=stage,
        public_key_pem=_public_key(app),
        api_layer=api_layer or deps.layer_zip(),
        max_concurrency=int(
            app.node.try_get_context("max_concurrency") or defaults["max_concurrency"].default
        ),
        batch_size=int(
            app.node.try_get_context("render_batch_size") or defaults["render_batch_size"].default
        ),
        tolerated_failure_percentage=float(
            app.node.try_get_context("tolerated_failure_percentage")
            or defaults["tolerated_failure_percentage"].default
        ),
        retention=campaigns_retention(
            Path(app.node.try_get_context("campaigns") or CAMPAIGNS).resolve()
        ),
        description=f"Reel personalized video ({stage})",
    )
    return app


def main() -> None:
    # Under the cdk CLI, the output directory and the context arrive in the environment.
    build(Path(os.environ.get("CDK_OUTDIR", OUTDIR)).resolve()).synth()


if __name__ == "__main__":
    main()
