# The launcher with the real frameworks on a GPU host: two workers on this machine (index 0
# and 1, both named localhost) join through what the launcher sets, with no arguments to
# torch.distributed or torchrun (JAX takes the process count and id as arguments). Run from the repository root; writes its
# logs under $OUT (default: a temporary directory).
set -u
OUT=${OUT:-$(mktemp -d)}
L=src/dlenv/launcher.py
py=python3
$py -c "import jax, torch; print('jax', jax.__version__, 'torch', torch.__version__)" 2>&1 | tail -1
run2() { # port, command...
  port=$1; shift
  for i in 0 1; do
    DLENV_INDEX=$i DLENV_HOSTS=localhost,localhost DLENV_PORT=$port DLENV_WAIT=5 \
      timeout 240 $py $L -- "$@" > $OUT/out-$port-$i.txt 2>&1 &
  done
  wait
  for i in 0 1; do echo "--- index $i"; grep -E "launcher|rank [0-9]|process [0-9] of|Error" $OUT/out-$port-$i.txt | head -4; done
}
echo "== torch.distributed (env://, gloo): MASTER_ADDR/PORT, WORLD_SIZE, RANK"
run2 29511 $py -c "import torch, torch.distributed as d; d.init_process_group('gloo'); t=torch.tensor([d.get_rank()+1.0]); d.all_reduce(t); print('rank', d.get_rank(), 'of', d.get_world_size(), 'sum', t.item())"
echo "== torchrun (PET_NNODES, PET_NODE_RANK, PET_MASTER_ADDR/PORT), 1 process per node"
cat > $OUT/ddp.py <<'PY'
import os, torch, torch.distributed as d
d.init_process_group("gloo")  # two ranks share one GPU here: NCCL refuses that
r = d.get_rank(); dev = "cpu"
t = torch.ones(1, device=dev) * (r + 1); d.all_reduce(t)
print("torchrun rank", r, "of", d.get_world_size(), "sum", t.item(), "on", dev, flush=True)
d.destroy_process_group()
PY
run2 29513 $py -m torch.distributed.run --nproc-per-node 1 $OUT/ddp.py
echo "== jax.distributed.initialize(): the coordinator from JAX_COORDINATOR_ADDRESS (JAX reads"
echo "   it), the count and id from JAX_NUM_PROCESSES and JAX_PROCESS_ID (JAX does not)"
XLA_PYTHON_CLIENT_PREALLOCATE=false run2 29514 $py -c "import os, jax; jax.distributed.initialize(num_processes=int(os.environ['JAX_NUM_PROCESSES']), process_id=int(os.environ['JAX_PROCESS_ID'])); print('jax process', jax.process_index(), 'of', jax.process_count(), 'devices', jax.device_count(), flush=True)"
