#!/bin/bash
# SSH sessions side by side (issue 4), on a real sshd this script starts on
# loopback (127.0.0.30, a free port, generated keys, removed at exit):
#  1. wait for a marker after N MiB of remote output:
#     `ssh host CMD | grep -F -m1 MARKER` (OpenSSH client) vs `dtest exec`
#     with one ssh:// tester (pipes, and a pty) expecting the marker;
#  2. session set-up of 32 testers on one host: dtest's shared connections
#     (DTEST_SSH_SHARE=1, the default) vs one connection per tester (=0).
# Usage: benches/peers-ssh.sh [MiB]   (default 256; needs openssh-server)
# Prints wall-clock seconds and ratios; run from the repository root after
# `cargo build --release`.
set -euo pipefail
MIB=${1:-256}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DTEST=${DTEST:-$ROOT/target/release/dtest}
[ -x /usr/sbin/sshd ] || { echo "install openssh-server" >&2; exit 2; }
[ -x "$DTEST" ] || { echo "build first: cargo build --release ($DTEST)" >&2; exit 2; }
W=$(mktemp -d)
SSHD_PID=
cleanup() { [ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null; pkill -f "$W/sshd_config" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p /run/sshd "$W/home/.ssh"
ssh-keygen -q -t ed25519 -N '' -f "$W/home/.ssh/id_ed25519"
ssh-keygen -q -t ed25519 -N '' -f "$W/host_key"
cp "$W/home/.ssh/id_ed25519.pub" "$W/authorized_keys"
ADDR=127.0.0.30
PORT=$(python3 -c "import socket;s=socket.socket();s.bind(('$ADDR',0));print(s.getsockname()[1])")
cat > "$W/sshd_config" <<EOC
ListenAddress $ADDR:$PORT
HostKey $W/host_key
PidFile $W/sshd.pid
AuthorizedKeysFile $W/authorized_keys
PermitRootLogin yes
StrictModes no
UsePAM no
PasswordAuthentication no
MaxStartups 100
Subsystem sftp internal-sftp
EOC
/usr/sbin/sshd -D -f "$W/sshd_config" -E "$W/sshd.log" & SSHD_PID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/$ADDR/$PORT) 2>/dev/null && break; sleep 0.05; done
echo "[$ADDR]:$PORT $(cut -d' ' -f1,2 "$W/host_key.pub")" > "$W/home/.ssh/known_hosts"
cat > "$W/home/.ssh/config" <<EOC
Host bench
  HostName $ADDR
  Port $PORT
  User $(id -un)
  IdentityFile $W/home/.ssh/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $W/home/.ssh/known_hosts
  BatchMode yes
EOC
export HOME=$W/home SSH_AUTH_SOCK= DTEST_SSH_CONFIG=$W/home/.ssh/config
CMD="yes 'a line of remote output, the same again and again' | head -c $((MIB * 1048576)); echo; echo MARK''ER-END"
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2-$1:.2f}')"; }

t0=$(now); ssh -F "$DTEST_SSH_CONFIG" bench "$CMD" | grep -F -m1 MARKER-END >/dev/null; t1=$(now)
peer=$(secs "$t0" "$t1")
for pty in false true; do
  cat > "$W/flood.toml" <<EOT
name = "ssh-flood"
timeout = "600s"
[[tester]]
name = "t1"
host = "ssh://bench"
pty = $pty
steps = [ { run = "$(printf '%s' "$CMD" | sed 's/"/\\"/g')" }, { expect = "MARKER-END", literal = true, timeout = "300s" } ]
EOT
  t0=$(now); "$DTEST" exec "$W/flood.toml" --out "$W/run-flood-$pty" >/dev/null; t1=$(now)
  d=$(secs "$t0" "$t1")
  echo "expect after $MIB MiB, pty=$pty: dtest ssh:// ${d}s, ssh | grep -F -m1 ${peer}s, ratio $(python3 -c "print(f'{$d/$peer:.2f}')")"
done

{
  echo 'name = "ssh-setup"'; echo 'timeout = "300s"'
  for i in $(seq 32); do
    printf '[[tester]]\nname = "t%s"\nhost = "ssh://bench"\nsteps = [ { run = "true" }, { wait = "30s", status = 0 } ]\n' "$i"
  done
} > "$W/setup.toml"
for share in 1 0; do
  best=
  for _ in 1 2 3; do
    t0=$(now); DTEST_SSH_SHARE=$share "$DTEST" exec "$W/setup.toml" --out "$W/run-setup-$share-$RANDOM" >/dev/null; t1=$(now)
    d=$(secs "$t0" "$t1")
    best=$(python3 -c "b='$best'; print(min(float(b), $d) if b else $d)")
  done
  echo "32 testers on one host, DTEST_SSH_SHARE=$share: best of 3 runs ${best}s (whole run: set-up, one command each, close)"
done
grep -c "Accepted publickey" "$W/sshd.log" | sed 's/^/connections accepted by sshd in total: /'
