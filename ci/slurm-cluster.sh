#!/usr/bin/env bash
# ci/slurm-cluster.sh - a real one-node Slurm cluster on localhost for CI and for trying the
# Slurm profile (profiles/slurm) on one machine. Debian 12 packages (Slurm 22.05), daemons started
# by hand (no systemd), no cgroups (proctrack/pgid, task/none). Derived from the tested
# /work/shared/slurm/local-cluster.sh; see docs/cluster.md.
#
# usage (as root):  ci/slurm-cluster.sh [all|up|install|configure|start|verify|status|stop|purge]
#   all (default) = install configure start verify stop   (a self-check, ~20 s)
#   up            = install configure start verify   (leave the cluster running; what .ci/run
#                   does; daemons left by an earlier `up` with other settings are restarted)
#   status        = exit 0 when the controller answers and the node is usable
#   stop          = cancel all jobs, stop every daemon by its PID file (never by name)
#   purge         = stop, then delete Slurm config/state/log dirs
# env:  PARTITION=debug  CLUSTER=segbench
#       WITH_DBD=0   (default: no slurmdbd/MariaDB, AccountingStorageType=none. The Snakemake
#                     Slurm plugin does not need accounting when it polls with
#                     --slurm-status-command squeue, as profiles/slurm does. 1: also install and
#                     start slurmdbd + MariaDB so that `sacct` works.)
#       FAKE_GPUS=0  (N>0: advertise N fake GPUs (gres/gpu backed by /dev/null-like char devices),
#                     so rules with resources gpu=1 -> sbatch --gpus=1 can be scheduled)
set -euo pipefail

PARTITION=${PARTITION:-debug}
CLUSTER=${CLUSTER:-segbench}
WITH_DBD=${WITH_DBD:-0}
FAKE_GPUS=${FAKE_GPUS:-0}
NODE=$(hostname -s)
LOGDIR=/var/log/slurm
RUNDIR=/run/slurm
ETC=/etc/slurm
MYSQL_SOCK=/run/mysqld/mysqld.sock

log() { echo "[$(date +%T)] $*"; }
die() { echo "ERROR: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"

wait_for() {  # wait_for <seconds> <description> <command...>
  local t=$1 what=$2; shift 2
  for _ in $(seq $((t * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  die "timeout after ${t}s waiting for: $what"
}

install_pkgs() {
  export DEBIAN_FRONTEND=noninteractive
  # Without systemd, package postinst scripts would try to start the daemons with
  # no config (and fail). A policy-rc.d that answers 101 stops that; remove it afterwards.
  local own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; own_policy=1
  fi
  local pkgs="munge slurmctld slurmd slurm-client" bins="munged slurmctld slurmd sbatch"
  [ "$WITH_DBD" = 1 ] && pkgs="$pkgs slurmdbd mariadb-server" && bins="$bins slurmdbd mariadbd"
  local b missing=0
  for b in $bins; do command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || missing=1; done
  if [ $missing = 0 ]; then log "packages already installed ($pkgs)"; return 0; fi
  log "apt-get install $pkgs"
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends $pkgs >/dev/null || { [ $own_policy = 1 ] && rm -f /usr/sbin/policy-rc.d; die "apt-get install failed"; }
  [ $own_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  true
}

CONFIG_CHANGED=0
conf_digest() { { cat "$ETC/slurm.conf" "$ETC/gres.conf" 2>/dev/null || true; } | md5sum; }

configure() {
  local before; before=$(conf_digest)
  log "configure node $NODE, partition $PARTITION, cluster $CLUSTER (WITH_DBD=$WITH_DBD FAKE_GPUS=$FAKE_GPUS)"
  getent hosts "$NODE" >/dev/null || echo "127.0.0.1 $NODE" >> /etc/hosts
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown -R munge:munge /etc/munge; chmod 700 /etc/munge; chmod 400 /etc/munge/munge.key
  mkdir -p $ETC /var/spool/slurmctld /var/spool/slurmd $LOGDIR $RUNDIR
  chown slurm:slurm /var/spool/slurmctld $LOGDIR $RUNDIR

  local nodeline gres_conf="" gres_node=""
  nodeline=$(slurmd -C | head -n1)   # NodeName=<host> CPUs=.. ... RealMemory=..
  if [ "$FAKE_GPUS" -gt 0 ]; then
    mkdir -p /var/lib/slurm-fakegpu
    for i in $(seq 0 $((FAKE_GPUS - 1))); do
      [ -c /var/lib/slurm-fakegpu/gpu$i ] || mknod -m 666 /var/lib/slurm-fakegpu/gpu$i c 1 3  # same dev as /dev/null
    done
    echo "NodeName=$NODE Name=gpu File=/var/lib/slurm-fakegpu/gpu[0-$((FAKE_GPUS - 1))]" > $ETC/gres.conf
    gres_conf="GresTypes=gpu"; gres_node="Gres=gpu:$FAKE_GPUS"
  else
    rm -f $ETC/gres.conf
  fi
  local acct="AccountingStorageType=accounting_storage/none"
  [ "$WITH_DBD" = 1 ] && acct="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819"

  cat > $ETC/slurm.conf <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmUser=slurm
AuthType=auth/munge
# requeued jobs wait cred_expire+1 s before they may start again (default 120)
AuthInfo=cred_expire=10
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$RUNDIR/slurmctld.pid
SlurmdPidFile=$RUNDIR/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
# no cgroups: processes are tracked by process group, no task binding. (proctrack/linuxproc, which
# tracks by parent pid, loses a process whose parent died first: a Snakemake that hangs on SIGTERM
# after scancel then survives the job forever; pgid still reaches it with the final SIGKILL.)
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SchedulerType=sched/backfill
# a requeued (preempted) job may start again as soon as its begin time passes (default: 30 s cycle)
SchedulerParameters=bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
# keep finished jobs visible to squeue for 5 min (the plugin's squeue status mode needs >=120 s)
MinJobAge=300
$acct
JobCompType=jobcomp/none
$gres_conf
$nodeline $gres_node State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  chmod 644 $ETC/slurm.conf
  [ "$before" = "$(conf_digest)" ] || CONFIG_CHANGED=1

  if [ "$WITH_DBD" = 1 ]; then
    local pass
    pass=$(sed -n 's/^StoragePass=//p' $ETC/slurmdbd.conf 2>/dev/null || true)
    [ -n "$pass" ] || pass=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    cat > $ETC/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$pass
StorageLoc=slurm_acct_db
LogFile=$LOGDIR/slurmdbd.log
PidFile=$RUNDIR/slurmdbd.pid
EOF
    chown slurm:slurm $ETC/slurmdbd.conf; chmod 600 $ETC/slurmdbd.conf   # slurmdbd refuses other modes
  fi
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  mkdir -p /run/munge $RUNDIR; chown munge:munge /run/munge; chown slurm:slurm $RUNDIR
  if ! alive /run/munge/munged.pid; then
    log "start munged"; runuser -u munge -- /usr/sbin/munged
  fi
  wait_for 20 munge sh -c 'munge -n | unmunge'

  if [ "$WITH_DBD" = 1 ]; then
    mkdir -p /run/mysqld; chown mysql:mysql /run/mysqld
    if [ ! -d /var/lib/mysql/mysql ]; then
      log "initialise MariaDB datadir"; mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    if ! alive /run/mysqld/mysqld.pid; then
      log "start mariadbd (unix socket only)"
      setsid /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql --socket=$MYSQL_SOCK \
        --pid-file=/run/mysqld/mysqld.pid --skip-networking </dev/null >>$LOGDIR/mariadb.log 2>&1 &
    fi
    wait_for 60 mariadb mysqladmin --socket=$MYSQL_SOCK ping
    local pass; pass=$(sed -n 's/^StoragePass=//p' $ETC/slurmdbd.conf)
    mysql --socket=$MYSQL_SOCK -u root -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$pass';
      ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$pass';
      GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
    if ! alive $RUNDIR/slurmdbd.pid; then log "start slurmdbd"; /usr/sbin/slurmdbd; fi
    wait_for 60 slurmdbd sacctmgr -n list cluster
  fi

  if ! alive $RUNDIR/slurmctld.pid; then log "start slurmctld"; /usr/sbin/slurmctld; fi
  wait_for 60 slurmctld sh -c 'scontrol ping | grep -q UP'
  if ! alive $RUNDIR/slurmd.pid; then log "start slurmd"; /usr/sbin/slurmd; fi
  wait_for 60 "node $NODE registered" sh -c "sinfo -h -n $NODE -o %T | grep -q -v -E 'unk|down|^$'"
  # a node left DRAINED/INVAL by an earlier bad config is not cleared by ReturnToService
  if sinfo -h -n "$NODE" -o %T | grep -q -E 'drain|inval'; then
    scontrol update nodename="$NODE" state=resume
  fi
  wait_for 60 "node $NODE idle" sh -c "sinfo -h -n $NODE -o %T | grep -q -E '^(idle|mixed|allocated)'"
  if [ "$WITH_DBD" = 1 ]; then   # slurmctld registers the cluster in slurmdbd on its own
    wait_for 60 "cluster $CLUSTER in slurmdbd" sh -c "sacctmgr -n -P list cluster format=cluster | grep -qx $CLUSTER"
  fi
  log "cluster up"
}

verify() {
  log "verify"
  sinfo
  local d jid st
  d=$(mktemp -d /tmp/slurm-verify.XXXXXX); cd "$d"
  jid=$(sbatch --parsable -p "$PARTITION" -o "$d/out.%j" --wrap 'hostname; srun -n1 echo step-ok')
  log "submitted job $jid"; squeue
  wait_for 60 "job $jid to leave the queue" sh -c "[ -z \"\$(squeue -h -j $jid -o %T 2>/dev/null | grep -v COMPLETED)\" ]"
  echo "--- job output:"; cat "$d/out.$jid"
  grep -qx "$NODE" "$d/out.$jid" && grep -q step-ok "$d/out.$jid" || die "job output wrong"
  if [ "$FAKE_GPUS" -gt 0 ]; then
    jid=$(sbatch --parsable -p "$PARTITION" --gpus=1 -o "$d/gpu.%j" --wrap 'echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES')
    wait_for 60 "gpu job $jid" sh -c "[ -z \"\$(squeue -h -j $jid -o %T 2>/dev/null | grep -v COMPLETED)\" ]"
    cat "$d/gpu.$jid"; grep -q 'CUDA_VISIBLE_DEVICES=0' "$d/gpu.$jid" || die "fake GPU job failed"
  fi
  if [ "$WITH_DBD" = 1 ]; then
    wait_for 30 "sacct to report job $jid COMPLETED" sh -c "sacct -n -X -P -j $jid -o State | grep -qx COMPLETED"
    sacct -j "$jid" --format=JobID,JobName,Partition,Account,State,ExitCode,Elapsed
  else
    echo "(WITH_DBD=0: sacct is not available)"
  fi
  cd /; rm -rf "$d"
  log "verify OK"
}

stop_pid() {  # stop_pid <pidfile> <expected comm>
  local f=$1 name=$2 pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null && [ "$(cat /proc/$pid/comm 2>/dev/null)" = "$name" ]; then
    log "stop $name (pid $pid)"; kill -TERM "$pid"
    for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && { log "$name did not stop, SIGKILL"; kill -KILL "$pid"; }
  fi
  rm -f "$f"
}

stop() {
  if alive $RUNDIR/slurmctld.pid && scontrol ping 2>/dev/null | grep -q UP; then
    local ids; ids=$(squeue -h -o %i | tr '\n' ' ')
    if [ -n "${ids// /}" ]; then
      log "cancel jobs: $ids"; scancel $ids || true
      for _ in $(seq 240); do [ -z "$(squeue -h -o %i)" ] && break; sleep 0.25; done
    fi
  fi
  stop_pid $RUNDIR/slurmd.pid slurmd
  stop_pid $RUNDIR/slurmctld.pid slurmctld
  stop_pid $RUNDIR/slurmdbd.pid slurmdbd
  stop_pid /run/mysqld/mysqld.pid mariadbd
  stop_pid /run/munge/munged.pid munged
  log "all daemons stopped"
}

purge() {
  if alive /run/mysqld/mysqld.pid; then
    mysql --socket=$MYSQL_SOCK -u root -e "DROP DATABASE IF EXISTS slurm_acct_db; DROP USER IF EXISTS 'slurm'@'localhost';" || true
  fi
  stop
  rm -rf $ETC/slurm.conf $ETC/slurmdbd.conf $ETC/gres.conf /var/spool/slurmctld /var/spool/slurmd \
         $LOGDIR $RUNDIR /var/lib/slurm-fakegpu
  log "purged Slurm config/state/logs"
}

status() {
  alive $RUNDIR/slurmctld.pid && alive $RUNDIR/slurmd.pid || { echo "slurm daemons not running"; return 1; }
  scontrol ping | grep -q UP || { echo "slurmctld does not answer"; return 1; }
  sinfo -h -n "$NODE" -o %T | grep -q -E '^(idle|mixed|allocated|completing)' || { sinfo; return 1; }
  sinfo
}

cmd=${1:-all}
case $cmd in
  all)       install_pkgs; configure; start; verify; stop ;;
  up)        install_pkgs; configure
             # daemons still running from an earlier `up` with other settings: restart them
             if [ $CONFIG_CHANGED = 1 ] && alive $RUNDIR/slurmctld.pid; then
               log "configuration changed: restarting the Slurm daemons"; stop
             fi
             start; verify ;;
  install)   install_pkgs ;;
  configure) configure ;;
  start)     start ;;
  verify)    verify ;;
  status)    status ;;
  stop)      stop ;;
  purge)     purge ;;
  *) die "unknown command $cmd" ;;
esac
