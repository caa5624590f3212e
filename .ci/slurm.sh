#!/usr/bin/env bash
# A single-node Slurm cluster on localhost, for the tests marked `slurm` (tests/test_slurm.py):
# Debian's slurm-wlm packages, munge, and slurmdbd with MariaDB so that `sacct` works. Debian 12,
# as root, without systemd (the daemons are started by hand), everything on 127.0.0.1.
#
#   .ci/slurm.sh up        install (if missing), configure, start, wait until the node is idle
#   .ci/slurm.sh install | configure | start | wait | stop | status
#
# SLURM_WORK (default $TMPDIR/clientsim-slurm): state, spool, logs, pid files, MariaDB's data.
# Accounting is always on: submitit learns that a job ended (cancelled, timed out, killed)
# only from `sacct`; without it a job that dies without writing its result leaves the
# submitting process polling forever.
#
# Pitfalls met on the way: the node line must be exactly what `slurmd -C` prints (a RealMemory
# above what slurmd detects drains the node); the ports 3306 and 6817-6819 must be free; the
# hostname must not change between `configure` and `start`; daemons are stopped by their pid
# files, and each is waited for.
set -euo pipefail

W=${SLURM_WORK:-${TMPDIR:-/tmp}/clientsim-slurm}
CLUSTER=localcluster
PARTITION=cpu
DBPASS=clientsim-ci-only   # a loopback-only throwaway database
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
MARK="# written by clientsim's .ci/slurm.sh (a single-node Slurm for tests)"

log() { printf '[slurm %(%T)T] %s\n' -1 "$*"; }
die() { log "error: $*"; exit 1; }

install() {
    local installed
    installed=$(dpkg-query -W -f='${Status}\n' "${PACKAGES[@]}" 2>/dev/null | grep -c 'install ok installed' || true)
    if [ "$installed" -ne ${#PACKAGES[@]} ]; then
        export DEBIAN_FRONTEND=noninteractive
        # Their postinst scripts try to start the services; without systemd that is a harmless
        # no-op here: the daemons are started by `start`.
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
    fi
}

# ours FILE: FILE is absent or was written by this script (a machine's own Slurm is left alone)
ours() { [ ! -e "$1" ] || head -1 "$1" | grep -qx "$MARK"; }

configure() {
    local host node
    host=$(hostname -s)
    for f in /etc/slurm/slurm.conf /etc/slurm/slurmdbd.conf; do
        ours "$f" || die "$f was not written by $0: this machine has a Slurm of its own; not touched"
    done
    mkdir -p "$W"/{ctld,d,log,run,dbd,mysql,mysqlrun}
    chown slurm:slurm "$W"/ctld "$W"/log "$W"/dbd
    chown mysql:mysql "$W"/mysql "$W"/mysqlrun
    # The munge package's postinst creates the key; make one if it is missing.
    if [ ! -s /etc/munge/munge.key ]; then mungekey --create --keyfile=/etc/munge/munge.key; fi
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
    node=$(slurmd -C | head -1)
    cat > /etc/slurm/slurm.conf <<EOF
$MARK
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
# proctrack/linuxproc and task/none need no cgroups
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmctldPort=6817
SlurmdPort=6818
SlurmctldPidFile=$W/run/slurmctld.pid
SlurmdPidFile=$W/run/slurmd.pid
StateSaveLocation=$W/ctld
SlurmdSpoolDir=$W/d
SlurmctldLogFile=$W/log/slurmctld.log
SlurmdLogFile=$W/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    cat > /etc/slurm/slurmdbd.conf <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=slurm
DebugLevel=info
LogFile=$W/log/slurmdbd.log
PidFile=$W/dbd/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=slurm
StoragePass=$DBPASS
StorageLoc=slurm_acct_db
EOF
    chown slurm:slurm /etc/slurm/slurmdbd.conf && chmod 0600 /etc/slurm/slurmdbd.conf
    if [ ! -d "$W"/mysql/mysql ]; then
        mariadb-install-db --user=mysql --datadir="$W"/mysql --skip-test-db \
            --auth-root-authentication-method=socket >"$W"/log/mariadb-install.log 2>&1 \
            || die "mariadb-install-db failed: see $W/log/mariadb-install.log"
    fi
}

# wait_for SECONDS WHAT COMMAND...: poll every 0.5 s
wait_for() {
    local limit=$1 what=$2; shift 2
    local end=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || die "timed out after ${limit}s waiting for $what (logs: $W/log)"
        sleep 0.5
    done
}

# alive PIDFILE: the pid file names a live process of that daemon (a reused pid does not count)
alive() {
    local name
    name=$(basename "$1" .pid)
    [ -s "$1" ] && [ "$(ps -o comm= -p "$(cat "$1")" 2>/dev/null)" = "$name" ]
}

# free PORT PIDFILE: the port is free, or held by our own daemon
free() {
    alive "$2" && return 0
    if ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; then
        die "port $1 is taken by another process (ss -ltnp 'sport = :$1')"
    fi
}

start() {
    [ -f /etc/slurm/slurm.conf ] || die "not configured: run $0 configure"
    grep -q "^SlurmctldHost=$(hostname -s)(" /etc/slurm/slurm.conf \
        || die "the hostname changed since configure: run $0 configure again"
    free 3306 "$W"/mysqlrun/mariadbd.pid
    free 6817 "$W"/run/slurmctld.pid
    free 6818 "$W"/run/slurmd.pid
    free 6819 "$W"/dbd/slurmdbd.pid
    mkdir -p /run/munge && chown munge:munge /run/munge && chmod 0755 /run/munge
    if ! alive /run/munge/munged.pid; then
        runuser -u munge -- /usr/sbin/munged && touch "$W"/run/munged.ours
    fi
    wait_for 20 munged bash -c 'munge -n | unmunge'
    local sock=$W/mysqlrun/mysqld.sock
    if ! alive "$W"/mysqlrun/mariadbd.pid; then
        setsid /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$W"/mysql \
            --socket="$sock" --pid-file="$W"/mysqlrun/mariadbd.pid \
            --bind-address=127.0.0.1 --port=3306 --skip-name-resolve \
            --log-error="$W"/mysqlrun/mariadb.err --innodb-buffer-pool-size=256M \
            --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
    fi
    wait_for 60 mariadb mariadb-admin --socket="$sock" ping
    mariadb --socket="$sock" -u root -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1'
        IDENTIFIED BY '$DBPASS'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
    alive "$W"/dbd/slurmdbd.pid || /usr/sbin/slurmdbd
    wait_for 60 slurmdbd sacctmgr -n list cluster
    sacctmgr -n list cluster format=cluster%40 | grep -qw "$CLUSTER" \
        || sacctmgr -i add cluster "$CLUSTER" >/dev/null
    alive "$W"/run/slurmctld.pid || /usr/sbin/slurmctld
    alive "$W"/run/slurmd.pid || /usr/sbin/slurmd
}

ready() {
    wait_for 60 "the node to be idle" bash -c "sinfo -h -N -o '%T' | grep -qx idle"
    timeout 60 srun -t 1 -N1 true || die "srun of a trivial job failed (logs: $W/log)"
    wait_for 30 "sacct to answer" sacct -n -X -S now-1hour
    log "ready: $(sinfo -h -N -o '%N %T %c cpus %m MB')"
}

stop() {
    # our own jobs on our own cluster, then each daemon by its pid file, newest first
    if alive "$W"/run/slurmctld.pid; then scancel --user="$(id -un)" 2>/dev/null || true; fi
    local f p
    for f in "$W"/run/slurmd.pid "$W"/run/slurmctld.pid "$W"/dbd/slurmdbd.pid \
             "$W"/mysqlrun/mariadbd.pid /run/munge/munged.pid; do
        alive "$f" || continue
        # munged: only one this script started (a machine's own Slurm keeps its munged)
        if [ "$f" = /run/munge/munged.pid ] && [ ! -e "$W"/run/munged.ours ]; then continue; fi
        p=$(cat "$f"); kill "$p"
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$p" 2>/dev/null; then log "$f: $p still alive after 20 s, SIGKILL"; kill -9 "$p"; fi
    done
    rm -f "$W"/run/munged.ours
}

status() {
    local f
    for f in /run/munge/munged.pid "$W"/mysqlrun/mariadbd.pid "$W"/dbd/slurmdbd.pid \
             "$W"/run/slurmctld.pid "$W"/run/slurmd.pid; do
        if alive "$f"; then echo "$(basename "$f" .pid): running"; else echo "$(basename "$f" .pid): stopped"; fi
    done
}

case ${1:-} in
    install) install ;;
    configure) configure ;;
    start) start ;;
    wait) ready ;;
    stop) stop ;;
    status) status ;;
    up)
        t0=$SECONDS
        install; log "installed ($((SECONDS - t0)) s)"
        configure
        start; ready; log "started ($((SECONDS - t0)) s)"
        ;;
    *) echo "usage: $0 up|install|configure|start|wait|stop|status" >&2; exit 2 ;;
esac
