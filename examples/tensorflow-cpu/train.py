"""Train a small Keras model on synthetic data, on one worker or on many.

`dlenv run --profile train` runs it once; `dlenv train --workers 2` (or an Indexed Job from
`dlenv k8s --profile train --workers 2`) runs it in every worker, where dlenv's launcher has
set TF_CONFIG, and MultiWorkerMirroredStrategy trains one model across them. The chief saves
a checkpoint into ./checkpoints (the project directory, mounted); every other worker saves
its copy to a scratch directory, as the strategy requires.
"""

import argparse
import json
import os
import sys
import tempfile

import numpy as np
import tensorflow as tf

STEPS, BATCH = 20, 64


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--replicas", type=int, default=0,
                        help="fail unless this many replicas train in sync")
    args = parser.parse_args()
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    strategy = (tf.distribute.MultiWorkerMirroredStrategy() if config
                else tf.distribute.get_strategy())
    task = config.get("task", {"type": "worker", "index": 0})
    has_chief = "chief" in config.get("cluster", {})
    is_chief = task["type"] == "chief" or (not has_chief and task["index"] == 0)
    replicas = strategy.num_replicas_in_sync
    if args.replicas and replicas != args.replicas:
        print(f"expected {args.replicas} replicas in sync, got {replicas}", file=sys.stderr)
        return 1

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4096, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1)) + 0.1 * rng.normal(size=(4096, 1))).astype("float32")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    data = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(4096, seed=0).repeat()
            .batch(BATCH * replicas).with_options(options))
    with strategy.scope():
        model = tf.keras.Sequential([tf.keras.layers.Input((8,)),
                                     tf.keras.layers.Dense(16, activation="relu"),
                                     tf.keras.layers.Dense(1)])
        model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="mse")
    history = model.fit(data, epochs=args.epochs, steps_per_epoch=STEPS, verbose=2)
    losses = history.history["loss"]
    print(f"{task['type']} {task['index']}: {replicas} replicas in sync, "
          f"loss {losses[0]:.4f} -> {losses[-1]:.4f}", flush=True)

    # Every worker saves (the save is a collective operation); only the chief's copy stays.
    where = "checkpoints" if is_chief else tempfile.mkdtemp(prefix="checkpoint-")
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), where, max_to_keep=1).save()
    if is_chief:
        print(f"checkpoint saved in {os.path.abspath(where)}", flush=True)
    return 0 if losses[-1] < losses[0] else 1


if __name__ == "__main__":
    sys.exit(main())
