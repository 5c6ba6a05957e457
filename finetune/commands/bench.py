"""`finetune bench`: numbers for export (size, latency), restore (time) and training (images/s)."""

from __future__ import annotations

import argparse
import json

HELP = (
    "Benchmarks that print numbers: `export` (.pb size, latency of the frozen graph versus the checkpoint graph), "
    "`restore` (planning and restoring a checkpoint), `train` (training step images/s on random images, input "
    "pipeline images/s, start to first step, peak memory), `peers` (this toolkit's training step against TF-Slim's "
    "loop and Keras 3's model.fit, interleaved, and fed from a JPEG folder), `eval` (`finetune eval` against TF-Slim's "
    "evaluation loop on the same checkpoint and JPEGs, interleaved), `cache` (classifier-only training end to end, "
    "each run its own process: TF-Slim's loop against finetune with and without cached features), `precision` "
    "(training step in float32 against bfloat16, interleaved). "
    "Without --ckpt a checkpoint of random weights is written to a temporary directory."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("export", "restore", "train", "peers", "eval", "cache", "precision"))
    parser.add_argument("--net", help="network name (`finetune nets`); required but for peers, eval, cache and "
                        "precision (resnet_v1_50)")
    parser.add_argument("--ckpt", help="checkpoint to use (export, restore); default: random weights")
    parser.add_argument("--num-classes", type=int,
                        help="class count (default: the net's published count; train: 10)")
    parser.add_argument("--image-size", type=int, help="input size in pixels (default: the net's)")
    parser.add_argument("--batch-size", type=int, help="images per run (default: export 1, train 8, eval 32, "
                        "peers, cache and precision 16)")
    parser.add_argument("--repeats", type=int,
                        help="timed runs (export, restore: default 10; eval: 3), or steps (train: 10)")
    parser.add_argument("--steps", type=int, help="peers, precision: interleaved timed steps per contender (default 5)")
    parser.add_argument("--epochs", type=int, default=5, help="cache: epochs of classifier-only training")
    parser.add_argument("--images-per-class", type=int,
                        help="cache: training JPEGs per class (default 64; 4 classes; a quarter as many for "
                        "validation); eval: JPEGs per class evaluated (default 32)")
    parser.add_argument("--rounds", type=int, default=1, help="cache: rounds of runs taking turns")
    parser.add_argument("--bfloat16", action="store_true",
                        help="cache: also a cached run with --precision mixed_bfloat16")
    parser.add_argument("--no-cache-off", action="store_true",
                        help="cache: leave out the --cache-features off run (as slow as TF-Slim's)")
    parser.add_argument("--frameworks", default="finetune,finetune-jpeg,tf-slim,keras",  # bench.peers.FRAMEWORKS
                        help="peers: comma-separated contenders (finetune, finetune-jpeg, finetune-bf16, tf-slim, keras)")
    parser.add_argument("--modes", default="all,logits", help="peers: what trains, comma-separated (all, logits)")
    parser.add_argument("--clip-norm", type=float, default=5.0, help="peers: global gradient norm clip")
    parser.add_argument("--trainable", default="all", help="train, precision: what trains ('logits', 'all', scopes)")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _ms(timing: dict) -> str:
    return f"{timing['median_ms']:.1f} ms (min {timing['min_ms']:.1f}, {_count(timing['runs'], 'run')})"


def _export_text(r: dict) -> str:
    frozen, graph = r["latency_frozen"]["median_ms"], r["latency_checkpoint"]["median_ms"]
    return "\n".join([
        f"{r['net']} at {r['image_size']} px, {r['num_classes']} classes",
        (f"frozen .pb: {r['pb_bytes'] / 2**20:.1f} MiB ({r['pb_bytes']} bytes), {r['pb_nodes']} nodes, "
         f"{r['batch_norms_folded']} BatchNorms folded; export + verification {r['export_seconds']:.1f} s, "
         f"max |difference| probabilities {r['max_difference']['probabilities']:.1e}"),
        f"latency, batch {r['batch_size']}: frozen .pb {_ms(r['latency_frozen'])}",
        f"                   checkpoint graph {_ms(r['latency_checkpoint'])}",
        f"checkpoint graph / frozen .pb: {graph / frozen:.2f}x",
        *(f"{name + ' .tflite:':18s} {row['bytes'] / 2**20:.2f} MiB, {_ms(row['latency'])} "
          f"({r['tflite_threads']} threads), {frozen / row['latency']['median_ms']:.2f}x the .pb's speed"
          for name, row in r.get("tflite", {}).items()),
    ])


def _restore_text(r: dict) -> str:
    return "\n".join([
        f"{r['net']}: {r['variables']} variables, {r['values'] / 1e6:.2f}M values (weights and BatchNorm statistics)",
        f"plan_restore:        {_ms(r['plan'])}",
        f"restore op (plan):   {_ms(r['restore'])}",
        f"tf.train.Saver:      {_ms(r['saver_restore'])}",
    ])


def _train_text(r: dict) -> str:
    start = r["start_to_first_step"]
    lines = [
        f"{r['net']} at {r['image_size']} px, batch {r['batch_size']}, trainable {r['trainable']}: "
        f"step {_ms(r['step'])}, {r['images_per_second']:.1f} images/s",
        f"start to first step: {start['total_s']:.1f} s (graph build {start['build_graph_s']:.1f}, restore plan "
        f"{start['plan_restore_s']:.1f}, init {start['init_s']:.1f} + restore {start['restore_s']:.1f}, first step "
        f"{start['first_step_s']:.1f})",
        f"variable init in a fresh session, {_count(r['init_in_fresh_session']['all']['runs'], 'interleaved run')}: everything "
        f"{_ms(r['init_in_fresh_session']['all'])}; only what the restore does not set (as train does) "
        f"{_ms(r['init_in_fresh_session']['not_restored'])}",
    ]
    if "input_pipeline" in r:
        pipe = r["input_pipeline"]
        lines.append(f"input pipeline alone (decode + training preprocessing + batch, {pipe['images']} JPEGs of "
                     f"{pipe['source_size']} px): JPEG folder {pipe['jpeg_folder']['images_per_second']:.1f} images/s, "
                     f"TFRecords {pipe['tfrecords']['images_per_second']:.1f} images/s")
    lines.append(f"peak memory (max RSS): {r['peak_memory_mib']:.0f} MiB")
    return "\n".join(lines)


def _precision_text(r: dict) -> str:
    lines = [f"{r['net']} at {r['image_size']} px, batch {r['batch_size']}, trainable {r['trainable']}, training "
             f"step, {_count(r['steps'], 'interleaved round')}:"]
    for row in r["rows"]:
        lines.append(f"  {row['precision']:<22} {_ms(row)}, {row['images_per_second']:.1f} images/s, "
                     f"{row['speedup']:.2f}x float32")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from finetune.bench import core as bench

    if args.what == "peers":
        from finetune.bench import peers as bench_peers

        result = bench_peers.bench_peers(args.net or "resnet_v1_50", image_size=args.image_size,
                                         batch_size=args.batch_size or 16, steps=args.steps or 5,
                                         num_classes=args.num_classes or 10, clip_norm=args.clip_norm,
                                         frameworks=tuple(args.frameworks.split(",")),
                                         modes=tuple(args.modes.split(",")),
                                         say=lambda text: print(text, flush=True))
        print(json.dumps(result, indent=2) if args.json else bench_peers.peers_table(result))
        return 0
    if args.what == "eval":
        from finetune.bench import peers as bench_peers

        result = bench_peers.bench_eval(args.net or "resnet_v1_50", image_size=args.image_size,
                                        batch_size=args.batch_size or 32, images_per_class=args.images_per_class or 32,
                                        rounds=args.repeats or 3,
                                        say=lambda text: print(text, flush=True))
        print(json.dumps(result, indent=2) if args.json else bench_peers.eval_table(result))
        return 0
    if args.what == "cache":
        from finetune.bench import e2e as bench_e2e

        result = bench_e2e.bench_cache(args.net or "resnet_v1_50", image_size=args.image_size,
                                       batch_size=args.batch_size or 16, epochs=args.epochs,
                                       images_per_class=args.images_per_class or 64, rounds=args.rounds,
                                       bfloat16=args.bfloat16, with_off=not args.no_cache_off, say=lambda text: print(text, flush=True))
        print(json.dumps(result, indent=2) if args.json else bench_e2e.cache_table(result))
        return 0
    if args.what == "precision":
        result = bench.bench_precision(args.net or "resnet_v1_50", image_size=args.image_size,
                                       batch_size=args.batch_size or 16, steps=args.steps or 5,
                                       num_classes=args.num_classes or 10, trainable=args.trainable)
        print(json.dumps(result, indent=2) if args.json else _precision_text(result))
        return 0
    if not args.net:
        raise ValueError(f"finetune bench {args.what} needs --net NET (`finetune nets` lists them).")
    if args.what == "export":
        result = bench.bench_export(args.net, checkpoint=args.ckpt, num_classes=args.num_classes,
                                    image_size=args.image_size, batch_size=args.batch_size or 1,
                                    repeats=args.repeats or 10)
        text = _export_text(result)
    elif args.what == "restore":
        result = bench.bench_restore(args.net, checkpoint=args.ckpt, num_classes=args.num_classes,
                                     repeats=args.repeats or 10)
        text = _restore_text(result)
    else:
        result = bench.bench_train(args.net, image_size=args.image_size, batch_size=args.batch_size or 8,
                                   steps=args.repeats or 10, num_classes=args.num_classes or 10, trainable=args.trainable)
        text = _train_text(result)
    print(json.dumps(result, indent=2) if args.json else text)
    return 0
