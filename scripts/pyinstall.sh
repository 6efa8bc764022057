# Sourced by scripts/bootstrap.sh and scripts/install_vllm.sh: `pyinstall VENV ARGS...` installs into VENV.
#
# With uv (`uv pip install`) where it can be had from the package index, else with pip. uv installs the same
# versions as pip here (the venvs' `pip freeze` compared), both venvs in 2-2.8 min instead of 3.8
# (BENCHMARKS.md, "The test suite"). uv reads none of pip's configuration, so pip's own (`pip config list`:
# files and PIP_* variables) is handed over: the index, the extra indexes, find-links, constraints and the CA
# bundle; and, as pip does, every index is searched for the best version (uv's default stops at the first
# index that has the package).
# With pip's find-links handed over, `torch==2.13.0` is the machine's local CPU build for either (uv alone would
# not look there and would download a multi-GB CUDA build).

_uv_args=()
_uv=""

_pyinstall_setup() {
  local venv=$1 line key val item
  # --compile-bytecode: pip writes .pyc at install, uv does not; under PYTHONDONTWRITEBYTECODE (set here) every
  # process would compile torch, transformers and vLLM again at import.
  _uv_args=(--python "$venv/bin/python" --index-strategy unsafe-best-match --compile-bytecode)
  # KUBETUNE_NO_UV=1: pip alone.
  if [ -n "${KUBETUNE_NO_UV:-}" ] \
      || ! "$venv/bin/python" -m pip install -q --disable-pip-version-check uv >/dev/null 2>&1 \
      || [ ! -x "$venv/bin/uv" ]; then
    _uv=""
    return
  fi
  _uv="$venv/bin/uv"
  while IFS= read -r line; do
    key=${line%%=*}
    val=${line#*=}
    val=${val#\'}
    val=${val%\'}
    case ${key##*.} in
      index-url) _uv_args+=(--default-index "$val") ;;
      extra-index-url) for item in $val; do _uv_args+=(--extra-index-url "$item"); done ;;
      find-links) for item in $val; do _uv_args+=(--find-links "$item"); done ;;
      constraint) for item in $val; do [ -f "$item" ] && _uv_args+=(--constraint "$item"); done ;;
      cert) export SSL_CERT_FILE="$val" ;;
    esac
  done < <("$venv/bin/python" -m pip config list 2>/dev/null)
}

pyinstall() {
  local venv=$1
  shift
  # uv and the settings handed to it are looked up once per venv (each is its own uv and python).
  [ "${_pyinstall_venv:-}" = "$venv" ] || { _pyinstall_setup "$venv"; _pyinstall_venv=$venv; }
  if [ -n "$_uv" ]; then
    "$_uv" pip install -q "${_uv_args[@]}" "$@"
  else
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location" >&2)
  fi
}
