"""Cost of the AR probe's fixed recipes: training steps per second and the projected wall
time of a full recipe, on ids of the shape real tokenizers give (random ids: speed does
not depend on their values). Result: results/benchmarks/probe_speed[_DEVICE].json.
Usage: python benchmarks/probe_speed.py [--device cpu] [--recipes tiny] [--steps 20]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch
from common import save

from vtbench.probe import RECIPES, train_probe

SHAPES = {"tiny": (1024, 64), "small": (16384, 256), "gpt-b": (16384, 256)}  # (vocab, tokens per image) each recipe is timed on


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--recipes", default="tiny", help="comma-separated recipe names")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per recipe (after 3 warm-up steps)")
    args = parser.parse_args()
    results = {}
    for name in args.recipes.split(","):
        vocab, length = SHAPES[name]
        generator = torch.Generator().manual_seed(0)
        train = torch.randint(0, vocab, (512, length), generator=generator)
        validation = torch.randint(0, vocab, (64, length), generator=generator)
        recipe = replace(RECIPES[name], steps=3, eval_every=10**9)
        train_probe(train, validation, vocab, recipe, args.device)  # warm-up (kernels, allocator)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        result = train_probe(train, validation, vocab, replace(recipe, steps=args.steps), args.device)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started  # includes one validation pass at the end
        steps_per_s = args.steps / seconds
        results[name] = {"vocab": vocab, "tokens_per_image": length, "batch_size": recipe.batch_size, "parameters": result["parameters"],
                         "steps_per_s": round(steps_per_s, 3), "recipe_steps": RECIPES[name].steps,
                         "projected_recipe_minutes": round(RECIPES[name].steps / steps_per_s / 60, 2)}  # fmt: skip
        print(name, results[name], flush=True)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
    save(f"probe_speed{'' if args.device == 'cpu' else '_' + args.device.split(':')[0]}", {"device": device, "torch": torch.__version__,
                                                                                            "recipes": results})  # fmt: skip


if __name__ == "__main__":
    main()
