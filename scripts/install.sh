#!/usr/bin/env bash
# Installs mtcp into a prefix, or removes it from there:
#
#   scripts/install.sh [--prefix DIR] [--no-build] [--no-i386]
#   scripts/install.sh --uninstall [--prefix DIR]
#
# The installed layout, which `mtcp` finds from its own path (PREFIX/bin/mtcp):
#   PREFIX/bin/mtcp
#   PREFIX/lib/mtcp/x86_64/{libmtcp.so,libmtcp.a,mtcp_restart}
#   PREFIX/lib/mtcp/i386/{libmtcp.so,libmtcp.a,mtcp_restart}
#   PREFIX/include/mtcp.h
#   PREFIX/lib/pkgconfig/mtcp.pc, mtcp-i386.pc
#   PREFIX/share/man/man1/mtcp.1, mtcp-COMMAND.1 (`mtcp man`)
#   PREFIX/share/bash-completion/completions/mtcp, share/zsh/site-functions/_mtcp,
#   PREFIX/share/fish/vendor_completions.d/mtcp.fish (`mtcp completion SHELL`)
# Needs only bash, coreutils and sed (and cargo, to build).
set -euo pipefail
umask 022 # what is installed is for every user

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
I686=i686-unknown-linux-gnu

die() { echo "install.sh: $*" >&2; exit 1; }

usage() {
    cat <<EOF
usage: scripts/install.sh [--prefix DIR] [--no-build] [--no-i386]
       scripts/install.sh --uninstall [--prefix DIR]

Builds mtcp (cargo build --release, for x86_64 and i686) and installs it into DIR:
DIR/bin/mtcp, DIR/lib/mtcp/{x86_64,i386}/, DIR/include/mtcp.h, DIR/lib/pkgconfig/,
man pages in DIR/share/man/man1/ and bash, zsh and fish completion in DIR/share/.

  --prefix DIR   where to install (default: /usr/local as root, ~/.local otherwise)
  --no-build     install what is built already; do not run cargo
  --no-i386      leave out the i386 runtime and mtcp_restart
  --uninstall    remove what an install into DIR put there
  -h, --help     this text

DESTDIR, if set, is put in front of every path written (for packaging); the installed
files still name DIR.
EOF
}

prefix=""
build=1
i386=1
uninstall=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix)
            [ $# -ge 2 ] || die "--prefix needs a directory"
            prefix=$2
            shift 2
            ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --no-build) build=0; shift ;;
        --no-i386) i386=0; shift ;;
        --uninstall) uninstall=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

if [ -z "$prefix" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        prefix=/usr/local
    else
        [ -n "${HOME:-}" ] || die "HOME is not set: give --prefix"
        prefix=$HOME/.local
    fi
fi
# The prefix is written into mtcp.pc and, through the runtime's path, into LD_PRELOAD,
# which cannot hold ':' or blanks; pkg-config cannot either.
case "$prefix" in
    *[[:space:]:]*) die "the prefix '$prefix' contains a blank or ':', which LD_PRELOAD and pkg-config cannot hold" ;;
esac
case "$prefix" in
    /*) ;;
    *) prefix="${PWD%/}/$prefix" ;;
esac
prefix=${prefix%/}
[ -n "$prefix" ] || die "the prefix must not be /"
dest="${DESTDIR:-}$prefix"

# Shell completion scripts, by shell, as `mtcp completion SHELL` makes them.
declare -A COMPLETIONS=(
    [bash]=share/bash-completion/completions/mtcp
    [zsh]=share/zsh/site-functions/_mtcp
    [fish]=share/fish/vendor_completions.d/mtcp.fish
)
MAN1=share/man/man1

# The man pages an mtcp makes (mtcp.1 and mtcp-COMMAND.1), by name.
man_pages() { # MTCP
    local tmp
    tmp=$(mktemp -d)
    "$1" man --dir "$tmp" | sed 's|.*/||' || die "$1 man failed"
    rm -rf "$tmp"
}

# Every file an install puts in the prefix (relative to it); uninstall removes these.
FILES=(
    bin/mtcp
    include/mtcp.h
    lib/pkgconfig/mtcp.pc
    lib/pkgconfig/mtcp-i386.pc
    "${COMPLETIONS[@]}"
)
for arch in x86_64 i386; do
    for f in libmtcp.so libmtcp.a mtcp_restart; do
        FILES+=("lib/mtcp/$arch/$f")
    done
done

if [ "$uninstall" = 1 ]; then
    # The installed mtcp names its man pages; without it, any mtcp.1 and mtcp-*.1.
    if [ -x "$dest/bin/mtcp" ]; then
        for page in $(man_pages "$dest/bin/mtcp"); do FILES+=("$MAN1/$page"); done
    else
        for page in "$dest/$MAN1"/mtcp.1 "$dest/$MAN1"/mtcp-*.1; do
            if [ -e "$page" ]; then FILES+=("$MAN1/${page##*/}"); fi
        done
    fi
    removed=0
    for f in "${FILES[@]}"; do
        if [ -e "$dest/$f" ] || [ -L "$dest/$f" ]; then
            rm -f "$dest/$f" || die "cannot remove $dest/$f"
            removed=$((removed + 1))
        fi
    done
    # Only directories of mtcp's own, and only if empty.
    for d in lib/mtcp/x86_64 lib/mtcp/i386 lib/mtcp; do
        if [ -d "$dest/$d" ]; then rmdir "$dest/$d" 2>/dev/null || true; fi
    done
    [ "$removed" -gt 0 ] || die "nothing of mtcp's is installed in $dest"
    echo "removed mtcp from $dest ($removed files)"
    exit 0
fi

# A relative CARGO_TARGET_DIR is relative to where we were started.
target=${CARGO_TARGET_DIR:-$ROOT/target}
case "$target" in
    /*) ;;
    *) target="${PWD%/}/$target" ;;
esac
release=$target/release
release32=$target/$I686/release

if [ "$build" = 1 ]; then
    if command -v cargo > /dev/null; then
        (cd "$ROOT" && cargo build --release) || die "cargo build --release failed"
        if [ "$i386" = 1 ]; then
            (cd "$ROOT" && cargo build --release --target "$I686") ||
                die "cargo build --release --target $I686 failed (it needs \`rustup target add $I686\` and gcc-multilib; or pass --no-i386)"
        fi
    else
        # Such as under sudo, whose PATH has no ~/.cargo/bin: what is built will do.
        echo "install.sh: cargo not found; installing what is built in $target" >&2
    fi
fi

need() {
    [ -f "$1" ] || die "$1 does not exist; build it with \`$2\` (or leave out --no-build)"
}
for f in mtcp libmtcp.so libmtcp.a mtcp_restart; do
    need "$release/$f" "cargo build --release"
done
if [ "$i386" = 1 ]; then
    for f in libmtcp.so libmtcp.a mtcp_restart; do
        need "$release32/$f" "cargo build --release --target $I686"
    done
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n 1)
[ -n "$version" ] || die "cannot read the version from $ROOT/Cargo.toml"

# sed replacement text: '\', '&' and the delimiter '|' are special.
sed_escape() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }

# `install` unlinks a file it replaces, so that a running program keeps the runtime
# it mapped and a running mtcp_restart is not overwritten in place.
put() { # MODE SOURCE PATH-IN-PREFIX
    install -D -m "$1" "$2" "$dest/$3" || die "cannot install $dest/$3"
}
pc() { # ARCH NAME
    local tmp
    tmp=$(mktemp)
    sed -e "s|@prefix@|$(sed_escape "$prefix")|g" -e "s|@arch@|$1|g" -e "s|@name@|$2|g" \
        -e "s|@version@|$version|g" "$ROOT/pkgconfig/mtcp.pc.in" > "$tmp"
    put 0644 "$tmp" "lib/pkgconfig/$2.pc"
    rm -f "$tmp"
}

put 0755 "$release/mtcp" bin/mtcp
put 0644 "$ROOT/include/mtcp.h" include/mtcp.h
put 0644 "$release/libmtcp.so" lib/mtcp/x86_64/libmtcp.so
put 0644 "$release/libmtcp.a" lib/mtcp/x86_64/libmtcp.a
put 0755 "$release/mtcp_restart" lib/mtcp/x86_64/mtcp_restart
pc x86_64 mtcp
# Made by the mtcp being installed, from the tables its --help is made from.
generated=$(mktemp -d)
for shell in "${!COMPLETIONS[@]}"; do
    "$release/mtcp" completion "$shell" > "$generated/$shell" || die "mtcp completion $shell failed"
    put 0644 "$generated/$shell" "${COMPLETIONS[$shell]}"
done
"$release/mtcp" man --dir "$generated/man1" > /dev/null || die "mtcp man failed"
for page in "$generated"/man1/*.1; do
    put 0644 "$page" "$MAN1/${page##*/}"
done
rm -rf "$generated"
if [ "$i386" = 1 ]; then
    put 0644 "$release32/libmtcp.so" lib/mtcp/i386/libmtcp.so
    put 0644 "$release32/libmtcp.a" lib/mtcp/i386/libmtcp.a
    put 0755 "$release32/mtcp_restart" lib/mtcp/i386/mtcp_restart
    pc i386 mtcp-i386
else
    # An earlier install's i386 part would no longer match this mtcp.
    rm -f "$dest/lib/mtcp/i386/"{libmtcp.so,libmtcp.a,mtcp_restart} "$dest/lib/pkgconfig/mtcp-i386.pc"
    if [ -d "$dest/lib/mtcp/i386" ]; then rmdir "$dest/lib/mtcp/i386" 2>/dev/null || true; fi
fi

echo "installed mtcp $version into $dest${DESTDIR:+ (for $prefix)}"
case ":$PATH:" in
    *":$prefix/bin:"*) ;;
    *) echo "note: $prefix/bin is not in PATH" ;;
esac
