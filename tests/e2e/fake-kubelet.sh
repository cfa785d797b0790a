#!/usr/bin/env bash
# fake-kubelet.sh: run one "container" the way a kubelet would, without a container engine.
#
#   fake-kubelet.sh [--user UID:GID] [--no-new-privs] [--read-only-root]
#                   [--bind SRC:DST[:ro]]... [--workdir DIR] [--roots-dir DIR]
#                   -- COMMAND [ARG...]
#
# In a private mount namespace (unshare -m) it builds a root file system on a tmpfs that holds
# only the host's system directories (/usr, /etc, /bin, /lib..., /dev, /proc, /sys) and a fresh
# /tmp, bind-mounts each volume (SRC, a host file or directory) at its mountPath (DST), chroots
# into it and execs COMMAND with setpriv as UID:GID. The environment is passed through
# unchanged: the caller sets exactly the container's env (env -i ...). Nothing is mounted or
# created outside the new namespace, so the host's / is never changed, and the mounts vanish
# with the process. A mountPath under /etc (the chart's /etc/webhook/certs) turns /etc into an
# overlay of the host's /etc with its upper layer on a tmpfs.
#
# Programs that an image would carry are bound under /e2e-bin (PATH starts there). Used by
# scenario 5 (the injected vault-agent-init / vault-agent containers, with `vault` bound at
# /e2e-bin/vault) and by lib.sh to run the injector itself.
set -euo pipefail

# The container's own PATH is restored just before the exec.
if [ -z "${_FAKE_KUBELET_NS:-}" ]; then
  if [ -n "${PATH+x}" ]; then export _FAKE_KUBELET_PATH="$PATH"; fi
  PATH=/usr/sbin:/usr/bin:/sbin:/bin
  _FAKE_KUBELET_NS=1 exec /usr/bin/unshare --mount --propagation private -- "$0" "$@"
fi
unset _FAKE_KUBELET_NS
PATH=/usr/sbin:/usr/bin:/sbin:/bin

user="" nnp="" ro_root="" workdir="/" roots="/tmp"
binds=()
while [ $# -gt 0 ]; do
  case "$1" in
    --user) user="$2"; shift 2 ;;
    --no-new-privs) nnp=1; shift ;;
    --read-only-root) ro_root=1; shift ;;
    --bind) binds+=("$2"); shift 2 ;;
    --workdir) workdir="$2"; shift 2 ;;
    --roots-dir) roots="$2"; shift 2 ;;   # where the (empty) host mount point is made
    --) shift; break ;;
    *) echo "fake-kubelet: unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "fake-kubelet: no command" >&2; exit 2; }

root="$(mktemp -d "$roots/fake-kubelet-root.XXXXXX")"
mount -t tmpfs -o mode=0755,size=64m fake-kubelet-root "$root"

for d in bin sbin lib lib32 lib64 libx32 usr etc opt; do
  if [ -L "/$d" ]; then
    ln -s "$(readlink "/$d")" "$root/$d"
  elif [ -d "/$d" ]; then
    mkdir "$root/$d"
    mount --rbind "/$d" "$root/$d"
  fi
done
for d in dev proc sys; do
  mkdir "$root/$d"
  mount --rbind "/$d" "$root/$d"
done
mkdir -m 1777 "$root/tmp"
mount -t tmpfs -o mode=1777,size=64m fake-kubelet-tmp "$root/tmp"

etc_overlay=""
overlay_etc() {
  local subs
  subs="$(findmnt -rn -o TARGET | grep '^/etc/' || true)"
  umount -R "$root/etc"
  mount -t tmpfs -o mode=0755,size=8m fake-kubelet-etc "$root/etc"
  mkdir "$root/etc/upper" "$root/etc/work" "$root/etc/overlay"
  mount -t overlay fake-kubelet-etc-overlay \
    -o "lowerdir=/etc,upperdir=$root/etc/upper,workdir=$root/etc/work" "$root/etc/overlay"
  # the overlay on top of the tmpfs that holds its upper layer (now hidden)
  mount --move "$root/etc/overlay" "$root/etc"
  local m
  for m in $subs; do [ -e "$root$m" ] && mount --bind "$m" "$root$m"; done
  etc_overlay=1
}

for b in "${binds[@]}"; do
  src="${b%%:*}"
  rest="${b#*:}"
  dst="${rest%%:*}"
  opt=""
  [ "$rest" != "$dst" ] && opt="${rest#*:}"
  [ -e "$src" ] || { echo "fake-kubelet: volume source $src does not exist" >&2; exit 2; }
  src="$(readlink -f "$src")"
  # Mount points are only ever created on the new root's tmpfs (or inside a volume bound
  # earlier), never inside a bound host system directory: such a DST is refused.
  target="$root$dst"
  if ! [ -e "$target" ]; then
    anc="$(dirname "$target")"
    while ! [ -e "$anc" ]; do anc="$(dirname "$anc")"; done
    mnt="$(findmnt -n -o TARGET -T "$anc" | tail -n1)"
    # Under /etc (the chart's /etc/webhook/certs), /etc becomes an overlay of the host's /etc
    # whose upper layer is a tmpfs, so that the mount point is made there and not on the host.
    case "$mnt/" in
      "$root/etc/"*) [ -n "$etc_overlay" ] || overlay_etc; mnt="$root" ;;
    esac
    for d in bin sbin lib lib32 lib64 libx32 usr etc opt dev proc sys; do
      case "$mnt/" in
        "$root/$d/"*) echo "fake-kubelet: mount point $dst would be inside the host's /$d" >&2; exit 2 ;;
      esac
    done
    mkdir -p "$(dirname "$target")"
    if [ -d "$src" ]; then mkdir "$target"; else : > "$target"; fi
  fi
  mount --bind "$src" "$target"
  if [ "$opt" = ro ]; then
    mount -o remount,bind,ro "$target"
  fi
done

if [ -n "$ro_root" ]; then
  mount -o remount,ro "$root"
fi

spargs=()
if [ -n "$user" ]; then
  spargs+=(--reuid="${user%%:*}" --regid="${user#*:}" --clear-groups)
  spargs+=(--inh-caps=-all --bounding-set=-all)
fi
[ -n "$nnp" ] && spargs+=(--no-new-privs)

cd "$root"
if [ -n "${_FAKE_KUBELET_PATH+x}" ]; then
  export PATH="$_FAKE_KUBELET_PATH"
  unset _FAKE_KUBELET_PATH
else
  unset PATH
fi
exec /usr/sbin/chroot "$root" /usr/bin/setpriv "${spargs[@]}" -- /bin/sh -c 'cd "$1" && shift && exec "$@"' fake-kubelet "$workdir" "$@"
