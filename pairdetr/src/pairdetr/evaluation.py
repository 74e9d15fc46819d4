"""Validation: predictions per image, metrics under both protocols, sharded over DDP ranks.

Under torchrun every rank predicts and matches its own shard of the images (image i goes to rank
i mod world), the small per-image summaries (metrics.image_summary) are all-gathered, and every
rank pools them in image order, so each rank returns the number a single process would and no
rank waits in a collective while another evaluates (the NCCL-timeout risk of evaluating on rank 0
only). Metrics are computed for both protocols from the same forward passes; the configured one
(`eval_protocol`) gives the plain keys, the other one is reported with a "<protocol>/" prefix.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from .config import Config
from .data import PairDataset, collate
from .metrics import PROTOCOLS, image_summary, pool_summaries
from .model import PairDETR
from .postprocess import postprocess_pairs, postprocess_two_stage


@torch.no_grad()
def predict(model: PairDETR, records: list, cfg: Config, device: torch.device,
            progress: bool = False) -> tuple[dict[str, list[dict]], list[int]]:
    """Post-processed detections of each decodable record, per protocol.

    Returns ({protocol: [pred per kept record]}, indices of the kept records).
    """
    dataset = PairDataset(records, cfg.data_image_size, cfg.data_max_size)
    model.eval()
    post = postprocess_pairs if model.spec.box_dim == 8 else postprocess_two_stage
    preds: dict[str, list[dict]] = {p: [] for p in PROTOCOLS}
    kept = []
    for i in tqdm(range(len(records)), desc="eval", disable=not progress, leave=False):
        batch = collate([dataset[i]])
        if batch is None:  # undecodable image (warned by the dataset)
            continue
        out = model(batch["pixel_values"].to(device), batch["pixel_mask"].to(device), aux=False)
        rec = records[i]
        for protocol in PROTOCOLS:
            preds[protocol].append(post(out["pred_logits"][0], out["pred_boxes"][0], rec.width,
                                        rec.height, cfg.eval_conf_threshold, protocol))
        kept.append(i)
    return preds, kept


def _all_gather(items: list, world: int) -> list:
    """Concatenate every rank's list (torch.distributed all_gather_object; no-op for 1 rank)."""
    if world <= 1:
        return items
    import torch.distributed as dist

    gathered: list = [None] * world
    dist.all_gather_object(gathered, items)
    return [x for part in gathered for x in part]


def evaluate_records(model: PairDETR, records: list, cfg: Config, device: torch.device,
                     rank: int = 0, world: int = 1,
                     progress: bool = False) -> tuple[dict[str, float], list[dict], list]:
    """Metrics over `records` (every rank must call it with the same list under DDP).

    Returns (scores, preds, kept): scores of cfg.eval_protocol under plain keys and of the other
    protocol under "<protocol>/<key>"; preds (cfg.eval_protocol) and records of this rank's shard.
    """
    if cfg.eval_max_images:
        records = records[:cfg.eval_max_images]
    shard = list(range(rank, len(records), world))
    preds, kept = predict(model, [records[i] for i in shard], cfg, device, progress)
    local = [(shard[k], {p: image_summary(preds[p][j], records[shard[k]], p,
                                          cfg.eval_height_scale) for p in PROTOCOLS})
             for j, k in enumerate(kept)]
    summaries = sorted(_all_gather(local, world), key=lambda item: item[0])
    scores: dict[str, float] = {}
    for protocol in PROTOCOLS:
        pooled = pool_summaries([s[protocol] for _, s in summaries], protocol)
        prefix = "" if protocol == cfg.eval_protocol else f"{protocol}/"
        scores.update({prefix + k: v for k, v in pooled.items()})
    scores["num_images"] = float(len(summaries))
    kept_records = [records[shard[k]] for k in kept]
    return scores, preds[cfg.eval_protocol], kept_records

