#!/usr/bin/env bash
# Starts a one-node Slurm cluster on this machine (munge, slurmctld, slurmd as root), with its
# configuration and state under $1 (a fresh directory). Prints the SLURM_CONF to export.
# Needs Debian's slurm-wlm and munge (.ci/run installs them). Fails loudly if the node does not
# come up: a test that needs it must not pass without it.
set -euo pipefail
dir=${1:?usage: cluster.sh DIR}
mkdir -p "$dir/state" "$dir/spool"
node=$(hostname -s)
cpus=$(nproc)
cat > "$dir/slurm.conf" <<CONF
ClusterName=fastdl-test
SlurmctldHost=$node(127.0.0.1)
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=1024 State=UNKNOWN
PartitionName=test Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$dir/slurm.conf
if ! pgrep -x munged >/dev/null; then
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged
fi
slurmctld
slurmd
for _ in $(seq 100); do
    if sinfo -h -o %t 2>/dev/null | grep -qx idle; then
        echo "$SLURM_CONF"
        exit 0
    fi
    sleep 0.2
done
echo "slurm: the node did not come up; its logs:" >&2
tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2
exit 1
