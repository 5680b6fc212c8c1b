#!/bin/bash
# Host test of qdstat's parsing: feed it a fake /proc/qd and debugfs tree
# (the formats qd.ko produces) and check the numbers come out. TAP output.
set -u
here=$(cd "$(dirname "$0")" && pwd)
qdstat=${QDSTAT:-$here/qdstat/qdstat}
[ -x "$qdstat" ] || make -s -C "$here" qdstat/qdstat >/dev/null || exit 1

tmp=$(mktemp -d)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$tmp"' EXIT

n=0 fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; }
# is DESC CMD...: ok when CMD succeeds
is() {
	local d=$1
	shift
	if "$@"; then ok "$d"; else notok "$d"; fi
}
# check DESC FILE REGEX: FILE has a line matching the extended REGEX
check() {
	if grep -Eq -- "$3" "$2"; then ok "$1"; else notok "$1"; sed 's/^/# /' "$2"; fi
}

cat >"$tmp/proc" <<'P'
version 2
scope all
contexts 2
queues 3
regions 4
pinned_pages 512
inflight 1
queued 37
overflowed 5
invalid_opcode 2
sockets 4
sock_bytes_in 576514
sock_bytes_out 1000
sock_zc_pushes 12
sock_zc_bytes 786432
sock_zc_copied 3
sock_zc_inflight 1
sock_copy_pushes 40
files 3
file_bytes_read 81920
file_bytes_written 69632
file_bios 5
file_punted 1
file_errors 1
some_future_counter 77
op nop submitted 0 completed 0 failed 0
op push submitted 10 completed 10 failed 0
op pop submitted 11 completed 10 failed 0
op open submitted 3 completed 3 failed 0
op sync submitted 2 completed 2 failed 0
P
# What a reader without CAP_SYS_ADMIN gets: its own uid's sums only.
cat >"$tmp/proc-uid" <<'P'
version 2
scope uid 65534
contexts 1
queues 2
regions 1
pinned_pages 16
inflight 3
queued 9
sockets 2
files 1
P

d=$tmp/qd
mkdir -p "$d/4242-0" "$d/4242-1" "$d/17-3" "$d/900-0"
cat >"$d/4242-0/info" <<'P'
pid 4242
comm qdbench
sq_entries 256
sq_head 21
sq_tail 21
cq_entries 512
cq_head 19
cq_tail 20
overflow 0
inflight 1
enters 12
regions 2
queues 2
future_key 9
P
cat >"$d/4242-0/queues" <<'P'
qd type depth max_depth pending_pops pending_pushes pushed popped
3 memq 1024 7 1 0 10 10
4 memq 64 2 0 5 123 118
P
cat >"$d/4242-0/regions" <<'P'
id addr len pages users
0 0x7f0000000000 2097152 512 3
1 0x7f0000200000 4096 1 0
P
cat >"$d/4242-1/info" <<'P'
pid 4242
comm qdbench
sq_entries 64
sq_head 5
sq_tail 6
cq_entries 128
cq_head 4
cq_tail 4
overflow 2
inflight 0
enters 3
regions 0
queues 0
pool 0 buffers 60 provided 64 taken 4 waiters 0
pool 1 buffers 0 provided 64 taken 64 waiters 2
P
# Socket qds as kmod/sock.c shows them: the memq columns, then key=value.
cat >"$d/4242-1/queues" <<'P'
qd type depth max_depth pending_pops pending_pushes pushed popped rights
0 tcp6 0 0 0 0 0 0 push,pop local=[::]:40055 peer=- state=listen pending_accepts=8 bytes_in=0 bytes_out=0
1 udp 0 0 1 0 20 20 push,pop local=0.0.0.0:40055 peer=- state=close pending_accepts=0 bytes_in=576514 bytes_out=576514
2 tcp 0 0 1 3 7 8 push,pop local=127.0.0.1:40055 peer=127.0.0.1:51234 state=established pending_accepts=0 bytes_in=1000 bytes_out=900 zerocopy=yes
3 tcp6 0 0 1 0 0 0 push,pop local=[fe80::1234:5678:9abc:def0%4294967295]:65535 peer=[fe80::1234:5678:9abc:def1%4294967295]:65534 state=syn-sent pending_accepts=1 bytes_in=0 bytes_out=0
5 memq 16 0 0 0 1 1 push,pop
P
printf 'id addr len pages users\n' >"$d/4242-1/regions"
# A later kernel with an extra column in the middle.
cat >"$d/17-3/info" <<'P'
pid 17
comm srv
sq_entries 8
sq_head 0
sq_tail 0
cq_entries 16
cq_head 0
cq_tail 0
overflow 0
inflight 0
enters 0
P
cat >"$d/17-3/queues" <<'P'
qd type flavour depth max_depth pending_pops pending_pushes pushed popped
9 memq sweet 32 1 0 0 5 4
P
printf 'id addr len pages users\n' >"$d/17-3/regions"
# Storage qds as kmod/file.c shows them: the memq columns (reads and writes
# in flight, bytes written and read), then key=value, the path last and
# escaped by seq_file_path() (\040 a space, \011 a tab, \134 a backslash).
# Row 3's path is longer than a line buffer and comes with a word this
# qdstat does not know; row 4 is a later kernel's with fewer words.
long=/srv/$(printf 'd%.0s' $(seq 1200))/$(printf 'e%.0s' $(seq 1200))/end
cat >"$d/900-0/info" <<'P'
pid 900
comm db
sq_entries 32
sq_head 7
sq_tail 9
cq_entries 64
cq_head 5
cq_tail 5
overflow 0
inflight 2
enters 4
regions 1
queues 5
P
cat >"$d/900-0/queues" <<P
qd type depth max_depth pending_pops pending_pushes pushed popped rights
0 blk 0 0 0 0 69632 81920 push,pop rpos=65536 wpos=65536 direct=1 align=4096 errors=1 punted=1 bios=5 path=/dev/nullb0
1 file 0 0 2 0 0 8192 pop rpos=8192 wpos=0 direct=0 align=1 errors=0 punted=0 bios=0 path=/var/lib/my\040db/data\0401.db
2 file 0 0 0 1 4096 0 push rpos=0 wpos=4096 direct=0 align=1 errors=0 punted=0 bios=0 path=/tmp/a\011tab\134x
3 file 0 0 0 0 0 0 push,pop rpos=0 wpos=0 direct=0 align=1 errors=0 punted=0 bios=0 fua=1 path=$long
4 blk 0 0 0 0 0 0 pop rpos=0 wpos=0 path=/dev/sdb
6 memq 8 1 0 0 2 2 push,pop
P
printf 'id addr len pages users\n0 0x7f1000000000 65536 16 2\n' >"$d/900-0/regions"

out=$tmp/out
"$qdstat" --proc "$tmp/proc" --debugfs "$d" >"$out" 2>&1
rc=$?
is "exit status 0 with a full tree (got $rc)" [ $rc -eq 0 ]
check "module counters" "$out" 'contexts 2.*queues 3'
check "pinned_pages" "$out" 'pinned_pages 512'
check "queued elements" "$out" 'queued 37'
check "overflowed" "$out" 'overflowed 5'
check "invalid_opcode" "$out" 'invalid_opcode 2'
check "heading: version and scope all" "$out" '^qd module \(.*, version 2\): all contexts$'
is "scope line not repeated as a counter" [ "$(grep -c 'scope all' "$out")" -eq 0 ]
check "unknown /proc key printed" "$out" 'some_future_counter 77'
check "socket counters on their own line" "$out" '^  sockets 4  bytes in 576514  out 1000$'
is "socket counters not repeated" [ "$(grep -c 'sock_bytes_in\|sock_zc\|sock_copy' "$out")" -eq 0 ]
check "socket pushes: zero-copy and by copy" "$out" '^  socket pushes: zero-copy 12 \(786432 bytes, 1 in flight, 3 copied by the stack\)  by copy 40$'
check "op push row" "$out" '^ *push +10 +10 +0$'
check "op pop row" "$out" '^ *pop +11 +10 +0$'
check "context count" "$out" '^contexts: 4$'
check "context 4242-0 rings" "$out" '4242 +4242-0 +qdbench +256/21/21 +512/19/20 +0 +1 +12'
check "context 4242-1 overflow" "$out" '4242 +4242-1 +qdbench +64/5/6 +128/4/4 +2 +0 +3'
check "buffer pools of a context" "$out" '4242-1 .* pool0=60,taken=4/64,waiters=0 pool1=0,taken=64/64,waiters=2$'
check "unknown info key printed" "$out" '4242-0 .*future_key=9'
check "contexts sorted by pid" "$out" '^ +17 +17-3 +srv'
is "pid 17 listed before pid 4242" \
	[ "$(grep -n '17-3 ' "$out" | head -1 | cut -d: -f1)" -lt "$(grep -n '4242-0 ' "$out" | head -1 | cut -d: -f1)" ]
check "queue count (sockets and storage apart)" "$out" '^queues: 5$'
check "queue 3 row" "$out" '4242-0 +3 +memq +1024 +7 +1 +0 +10 +10'
check "queue 4 row" "$out" '4242-0 +4 +memq +64 +2 +0 +5 +123 +118'
check "queue found by column name" "$out" '17-3 +9 +memq +32 +1 +0 +0 +5 +4 +flavour=sweet'
check "memq row of a context with sockets" "$out" '4242-1 +5 +memq +16 +0 +0 +0 +1 +1 +rights=push,pop$'
check "socket count" "$out" '^sockets: 4$'
is "sockets are not in the queues table" [ "$(grep -cE '^ +4242-1 +[0-3] ' "$out")" -eq 4 ]
check "listener row" "$out" '^ +4242-1 +0 +tcp6 +\[::\]:40055 +- +listen +0 +0 +8 +0 +0$'
check "udp row" "$out" '^ +4242-1 +1 +udp +0\.0\.0\.0:40055 +- +close +1 +0 +0 +576514 +576514$'
check "established row: peer, pending pops and pushes, bytes" "$out" '^ +4242-1 +2 +tcp +127\.0\.0\.1:40055 +127\.0\.0\.1:51234 +established +1 +3 +0 +1000 +900 +zerocopy=yes$'
check "longest IPv6 addresses kept whole" "$out" '^ +4242-1 +3 +tcp6 +\[fe80::1234:5678:9abc:def0%4294967295\]:65535 +\[fe80::1234:5678:9abc:def1%4294967295\]:65534 +syn-sent +1 +0 +1 +0 +0$'
check "storage counters on their own line" "$out" '^  files 3  bytes read 81920  written 69632  bios 5  punted 1  errors 1$'
is "storage counters not repeated" [ "$(grep -c 'file_bytes\|file_bios\|file_punted\|file_errors' "$out")" -eq 0 ]
check "op open row" "$out" '^ *open +3 +3 +0$'
check "op sync row" "$out" '^ *sync +2 +2 +0$'
check "memq row of a context with storage" "$out" '^ +900-0 +6 +memq +8 +1 +0 +0 +2 +2 +rights=push,pop$'
is "storage qds are not in the queues table" \
	[ "$(sed -n '/^queues:/,/^$/p' "$out" | grep -cE ' (file|blk) ')" -eq 0 ]
check "storage count" "$out" '^storage: 5$'
check "storage header" "$out" '^ +ctx +qd +type +rights +rpos +wpos +pend_reads +pend_writes +bytes_read +bytes_written +direct +errors +bios +punted +path$'
check "block device row: O_DIRECT alignment, bytes, bios, punted, errors" "$out" '^ +900-0 +0 +blk +push,pop +65536 +65536 +0 +0 +81920 +69632 +4096 +1 +5 +1 +/dev/nullb0$'
check "file row: a path with spaces, reads in flight" "$out" '^ +900-0 +1 +file +pop +8192 +0 +2 +0 +8192 +0 +no +0 +0 +0 +/var/lib/my db/data 1\.db$'
check "file row: tab and backslash stay escaped" "$out" '^ +900-0 +2 +file +push +0 +4096 +0 +1 +0 +4096 +no +0 +0 +0 +/tmp/a\\011tab\\134x$'
check "unknown storage word before the path, a long path whole" "$out" "^ +900-0 +3 +file +push,pop +0 +0 +0 +0 +0 +0 +no +0 +0 +0 +fua=1 +$long\$"
check "storage row without counters" "$out" '^ +900-0 +4 +blk +pop +0 +0 +0 +0 +0 +0 +- +- +- +- +/dev/sdb$'
check "region count" "$out" '^regions: 3$'
check "region 0 row" "$out" '4242-0 +0 +0x7f0000000000 +2097152 +512 +3'
check "region 1 row" "$out" '4242-0 +1 +0x7f0000200000 +4096 +1 +0'

"$qdstat" --proc "$tmp/proc-uid" --debugfs "$d" >"$out" 2>&1
rc=$?
is "uid scope exits 0 (got $rc)" [ $rc -eq 0 ]
check "uid scope: heading says whose counts" "$out" '^qd module \(.*, version 2\): contexts of uid 65534 only; all contexts and module-wide counters need CAP_SYS_ADMIN$'
check "uid scope: own counters" "$out" 'contexts 1 +queues 2'
check "uid scope: queued" "$out" 'queued 9'
check "uid scope: open sockets" "$out" '^  sockets 2$'
check "uid scope: open storage qds" "$out" '^  files 1$'
is "uid scope: no op table" [ "$(grep -c 'submitted' "$out")" -eq 0 ]

# An unprivileged reader: /proc/qd readable, debugfs not (it is root's).
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	chmod 755 "$tmp"
	chmod 644 "$tmp/proc-uid"
	chmod 700 "$d"
	setpriv --reuid 65534 --regid 65534 --clear-groups \
		"$qdstat" --proc "$tmp/proc-uid" --debugfs "$d" >"$out" 2>&1
	rc=$?
	chmod 755 "$d"
	is "unprivileged reader exits 0 (got $rc)" [ $rc -eq 0 ]
	check "unprivileged reader: own counters" "$out" 'contexts 1 +queues 2'
	check "unprivileged reader: debugfs is root's" "$out" 'no per-context view: .* is readable by root only'
else
	for t in "unprivileged reader exits 0" "unprivileged reader: own counters" \
		 "unprivileged reader: debugfs is root's"; do
		n=$((n + 1)); echo "ok $n - $t # SKIP needs root and setpriv"
	done
fi

"$qdstat" --proc "$tmp/nope" --debugfs "$d" >"$out" 2>&1
rc=$?
is "missing /proc/qd exits 1 (got $rc)" [ $rc -eq 1 ]
check "missing /proc/qd says not loaded" "$out" 'qd.ko not loaded'

"$qdstat" --proc "$tmp/proc" --debugfs "$tmp/nodebugfs/qd" >"$out" 2>&1
rc=$?
is "missing debugfs still exits 0 (got $rc)" [ $rc -eq 0 ]
check "missing debugfs: module counters shown" "$out" 'pinned_pages 512'
check "missing debugfs: says so" "$out" 'debugfs is not mounted'

"$qdstat" --proc "$tmp/proc" --debugfs "$d" -w 0.05 -n 3 >"$out" 2>&1
rc=$?
is "-w -n exits 0 (got $rc)" [ $rc -eq 0 ]
is "-n 3 refreshes 3 times" [ "$(grep -c '^qdstat ' "$out")" -eq 3 ]
check "watch shows a rate column" "$out" 'completed/s'
check "watch: storage byte rates" "$out" '^  files 3  bytes read 81920 \(0/s\)  written 69632 \(0/s\)  bios 5'
check "watch: storage table each refresh" "$out" '^storage: 5$'
is "watch: storage table 3 times" [ "$(grep -c '^storage: 5$' "$out")" -eq 3 ]

"$qdstat" --bogus >"$out" 2>&1
rc=$?
is "bad option exits 2 (got $rc)" [ $rc -eq 2 ]

echo "1..$n"
[ $fail -eq 0 ]
