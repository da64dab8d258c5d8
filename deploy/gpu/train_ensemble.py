"""Train, export and evaluate the CNN ensemble with every output under one folder.

`python3 deploy/gpu/train_ensemble.py --config configs/train/ensemble-gpu.toml --out OUT
--work /tmp/lensflow-train` runs `lensflow train ensemble` with the config's output, reports,
summary and work folders moved: OUT/models/ (ONNX members, the photometry gate, manifest.toml),
OUT/report.json and OUT/report.png (run report and ROC curves of every set, rewritten after
each step) and OUT/train.log; simulated sets, checkpoints and per-set reports under --work.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path


def _logging(log: Path) -> None:
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [
        logging.StreamHandler(sys.stdout),
        logging.FileHandler(log, mode="a"),
    ]
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    logging.captureWarnings(True)
    for noisy in ("distributed", "tornado", "bokeh", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/train/ensemble-gpu.toml"))
    parser.add_argument("--out", type=Path, required=True, help="folder for what comes back")
    parser.add_argument("--work", type=Path, required=True, help="folder for sets, checkpoints")
    args = parser.parse_args()
    out, work = args.out.resolve(), args.work.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    import distributed  # noqa: F401  (its import sets its loggers' levels; ours come after)

    _logging(out / "train.log")
    logger = logging.getLogger("train_ensemble")
    began = time.perf_counter()

    from lensflow.errors import LensflowError
    from lensflow.train import TrainConfig, train_ensemble

    config = TrainConfig.from_toml(args.config)
    config = config.model_copy(
        update={
            "work": work,
            "checkpoints": work / "checkpoints",
            "output": out / "models",
            "reports": work / "reports",
            "summary": out / "report.json",
        }
    )
    logger.info("config %s: %s", args.config, config.model_dump(mode="json"))
    try:
        manifest = train_ensemble(config)
    except LensflowError as exc:
        logger.error("training failed: %s", exc)
        return 1
    except Exception:
        logger.exception("training failed")
        return 1
    logger.info("done in %.1f s; manifest %s", time.perf_counter() - began, manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
