# Sourced by the namespace harnesses' run.sh: refuses to run without root, and installs the
# Debian packages they need when missing (iproute2, nftables, python3, and any given as
# arguments: `source harness/needs-root-net.sh gcc`).
if [[ $(id -u) -ne 0 ]]; then
    echo "run.sh: needs root (network namespaces and nftables)" >&2
    exit 1
fi
_needed=(ip:iproute2 nft:nftables python3:python3)
for _extra in "$@"; do
    case $_extra in gcc) _needed+=(cc:gcc) ;; arping) _needed+=(arping:iputils-arping) ;; *) _needed+=("$_extra:$_extra") ;; esac
done
_missing=()
for _pair in "${_needed[@]}"; do
    command -v "${_pair%%:*}" >/dev/null || _missing+=("${_pair#*:}")
done
if ((${#_missing[@]})); then
    echo "run.sh: installing ${_missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${_missing[@]}" >/dev/null
fi
unset _needed _missing _pair _extra
