#!/usr/bin/env bash
# A single-node SLURM cluster with accounting (munge, MariaDB, slurmdbd, slurmctld, slurmd) on this
# machine, for the workflow's cluster test. Debian 12 packages; run as root.
#
#   tools/slurm_cluster.sh install   apt-get the packages (once)
#   tools/slurm_cluster.sh start     configure and start the daemons; prints the partition and account
#   tools/slurm_cluster.sh stop      stop them again, each by its pid
#
# The node offers one fake GPU (a /dev/null clone) so that jobs asking for --gpus=1 are scheduled.
set -euo pipefail

STATE=${SLURM_TEST_STATE:-/tmp/activation-atlas-slurm}
CLUSTER=atlascluster
PARTITION=debug
ACCOUNT=atlas
HOST=$(hostname -s)

wait_for() {   # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq "$seconds"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    echo "timed out waiting for $what" >&2
    return 1
}

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_idle() { sinfo -h -N -o %T | grep -qx idle; }

node_report() {   # why the node is not idle, for a failed start
    sinfo -N -o "%N %T %E" >&2 || true
    scontrol show node >&2 || true
    slurmd -C >&2 || true
    tail -n 20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
}

install() {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm slurmdbd munge mariadb-server >/dev/null
}

start() {
    # The cluster starts empty: jobs saved by an earlier, interrupted run would hold the node.
    rm -rf "$STATE/spool" "$STATE/state"
    mkdir -p "$STATE"/{spool,state,log} /etc/slurm
    # munge: the key, then the daemon as its own user.
    mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
    [ -s /etc/munge/munge.key ] || mungekey -c
    chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
    running /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged
    # MariaDB for slurmdbd's accounting (the SLURM executor plugin asks sacct for job states).
    install -d -o mysql -g mysql /run/mysqld
    /usr/sbin/mariadbd --user=mysql --innodb-buffer-pool-size=64M --pid-file=/run/mysqld/mariadbd.pid \
        >"$STATE/log/mariadb.log" 2>&1 &
    wait_for 60 mariadb mariadb-admin ping
    mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
                GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
    cat >/etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
LogFile=$STATE/log/slurmdbd.log
PidFile=$STATE/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
CONF
    # sacctmgr finds slurmdbd through slurm.conf: write it first.
    # The node as slurmd itself sees it (CPUs, sockets, cores, threads, memory): a node configured
    # with more than slurmd finds is drained and never becomes idle. 1 GiB of memory is kept back.
    local detected hardware memory
    detected=$(slurmd -C | head -1)
    hardware=$(sed -E 's/^NodeName=[^ ]+ //; s/ RealMemory=[0-9]+//' <<<"$detected")
    memory=$(( $(sed -E 's/.*RealMemory=([0-9]+).*/\1/' <<<"$detected") - 1024 ))
    [ -e "$STATE/fakegpu0" ] || mknod "$STATE/fakegpu0" c 1 3
    cat >/etc/slurm/gres.conf <<CONF
NodeName=$HOST Name=gpu File=$STATE/fakegpu[0-0]
CONF
    cat >/etc/slurm/slurm.conf <<CONF
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux
AccountingStorageTRES=gres/gpu
GresTypes=gpu
NodeName=$HOST $hardware RealMemory=$memory Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
    chmod 600 /etc/slurm/slurmdbd.conf
    slurmdbd
    wait_for 60 slurmdbd sacctmgr -n list cluster
    sacctmgr -i add cluster "$CLUSTER" >/dev/null || true
    sacctmgr -i add account "$ACCOUNT" >/dev/null || true
    sacctmgr -i add user root Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null || true
    slurmctld
    slurmd
    wait_for 30 slurmctld scontrol ping
    # A node drained in an earlier run's saved state is brought back.
    scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
    wait_for 120 "the node to be idle" node_idle || { node_report; return 1; }
    echo "partition=$PARTITION account=$ACCOUNT"
}

kill_pidfile() {
    if [ -s "$1" ]; then kill "$(cat "$1")" 2>/dev/null || true; fi
}

stop() {
    scancel --user=root 2>/dev/null || true
    scontrol shutdown 2>/dev/null || true   # slurmctld and slurmd
    kill_pidfile "$STATE/slurmdbd.pid"
    mariadb-admin shutdown 2>/dev/null || true
    kill_pidfile /run/munge/munged.pid
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
