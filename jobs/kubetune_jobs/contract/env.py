"""Names of the environment variables the jobs read. Values that must not appear in a command line
(credentials, tokens, API keys) reach the jobs this way, by reference from a Secret in a cluster."""

from __future__ import annotations

S3_ENDPOINT = "KUBETUNE_S3_ENDPOINT"  # http(s)://host:port of the object store
S3_ENDPOINT_FALLBACK = "AWS_ENDPOINT_URL"  # what boto-style tooling sets; read when ours is unset
ACCESS_KEY = "AWS_ACCESS_KEY_ID"
SECRET_KEY = "AWS_SECRET_ACCESS_KEY"
REGION = "AWS_REGION"
S3_RETRIES = "KUBETUNE_S3_RETRIES"
S3_RETRY_DELAY = "KUBETUNE_S3_RETRY_DELAY"
S3_RETRY_BUDGET = "KUBETUNE_S3_RETRY_BUDGET"  # seconds an operation keeps retrying a transient failure
MAX_DIR_BYTES = "KUBETUNE_MAX_DIR_BYTES"  # the largest directory a completeness marker may announce
HF_TOKEN = "HF_TOKEN"  # gated Hub models and datasets
API_KEY = "KUBETUNE_API_KEY"  # bearer key of an OpenAI-compatible endpoint (evaluate, bench)
PUSHGATEWAY = "KUBETUNE_PUSHGATEWAY"  # Pushgateway URL when no --pushgateway is given (may carry credentials)
THREADS = "KUBETUNE_THREADS"  # CPU threads for torch (default: the cgroup's CPU budget)
CACHE = "KUBETUNE_CACHE"  # models, downloads and probes (default ~/.cache/kubetune)

STORE_CREDENTIALS = (ACCESS_KEY, SECRET_KEY)  # the keys a store credentials Secret must hold
