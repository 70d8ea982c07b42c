# Sourced by the scripts that need root (namespaces, veths, BPF, apt-get).
# On machines of this kind you are root and sudo is not installed: the
# scripts run as they are. Otherwise they re-run themselves with sudo where
# it exists, and say what to do where it does not.
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    echo "$(basename "$0"): not root; re-running with sudo" >&2
    exec sudo --preserve-env=CI,PATH,WIRELAB_BENCH_REFUSE_LIVE_FRAMES "$0" "$@"
  fi
  echo "$(basename "$0"): must run as root (network namespaces, veths, BPF, apt-get) and sudo is not installed: run it from a root shell" >&2
  exit 1
fi
