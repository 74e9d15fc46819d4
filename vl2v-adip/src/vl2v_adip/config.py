"""Config: one frozen dataclass; defaults < TOML preset (--config) < --field value overrides."""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import tomllib

from .runtime import ConfigError, MissingPathError

Method = Literal["erm", "kd", "adip", "zeroshot"]
TeacherAccess = Literal["black_box", "white_box"]
DataName = Literal["synthetic", "PACS", "VLCS", "OfficeHome", "TerraIncognita", "DomainNet"]
SwadModeOption = Literal["by_student", "official_fix", "standard"]
ValleyRule = Literal["official", "once"]
TeacherNorm = Literal["imagenet", "clip"]


@dataclass(frozen=True)
class Config:
    # --- run
    config_name: str = "default"  # run folder group: runs/<config_name>/<time>/
    out_dir: str = ""  # run folder; empty = runs/<config_name>/<YYYYmmdd-HHMMSS>
    seed: int = 0  # seeds model init, batches, augmentation (official --seed)
    trial_seed: int = 0  # seeds the DomainBed in/out split of each domain (official
    #                      --trial_seed; the official scripts leave it at 0)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    deterministic: bool = True
    wandb: bool = False  # mirror metrics to wandb (offline unless WANDB_MODE says otherwise)
    # --- data (DomainBed leave-one-domain-out)
    data_name: DataName = "synthetic"
    data_root: str = ""  # parent of PACS/, VLCS/, office_home/, terra_incognita/, domain_net/
    test_domain: int = 0  # index of the held-out domain in the dataset's domain list
    holdout_fraction: float = 0.2  # DomainBed: per domain, the "out" part; training domains
    #                                validate on it, the held-out domain is scored on "in"
    image_size: int = 224
    synth_domains: tuple[str, ...] = ("photo", "sketch", "cartoon", "texture")
    synth_per_domain: int = 300  # synthetic images per benchmark domain
    # --- teacher (vision-language model)
    teacher_path: str = ""  # HF CLIP folder or teacher .pt; empty = stand-in (see README)
    teacher_input_norm: TeacherNorm = "imagenet"  # official: CLIP gets the ImageNet-normalised
    #                                               DomainBed tensors; "clip": CLIP's own stats
    prompt_templates: tuple[str, ...] = ("a photo of a {}",)  # official prompt_style 2; several
    #                                   templates are averaged (normalise, mean, normalise)
    teacher_pretrain_domains: tuple[str, ...] = ("inverted", "dotted", "outline", "blurred",
                                                 "mosaic", "noisy")  # synthetic stand-in only
    teacher_pretrain_per_domain: int = 400
    teacher_pretrain_steps: int = 400
    teacher_width: int = 32  # stand-in conv image tower width
    teacher_embed_dim: int = 64  # stand-in embedding size D
    # --- student
    student_arch: str = "small_cnn"  # small_cnn | any timm name (resnet50, vit_small_patch16_224,
    #                                  deit_small_patch16_224)
    student_weights: str = ""  # ImageNet weights file (timm) or a student_init.pt (small_cnn)
    student_width: int = 16  # small_cnn only
    student_pretrain_domains: tuple[str, ...] = ("inverted", "outline")  # synthetic "ImageNet"
    student_pretrain_steps: int = 200  # synthetic only, when student_weights is empty
    # --- method (Sec. 4)
    method: Method = "adip"  # erm | kd (naive KD) | adip (VL2V-ADiP) | zeroshot (teacher)
    teacher_access: TeacherAccess = "black_box"  # white_box (adip only) = VL2V-SD
    align_steps: int = 5000  # stage 1 (Align): projection only, backbone frozen (own run in
    #                          the official scripts, 5000 DomainBed steps)
    lmd: float = 0.5  # weight of the image-embedding term (official `lmd`)
    align_select_from: int = 100  # Distill starts from the best Align step at or after this
    #                               one (official stage-1 --model_save: 100; ViT-B: 1000)
    freeze_bn: bool = True  # BatchNorm in eval mode in every stage and no BN re-estimation
    #                         for the SWAD model (DomainBed ResNet freeze_bn, official runs)
    kd_temperature: float = 4.0  # naive KD temperature T
    kd_alpha: float = 0.5  # naive KD: (1 - alpha) CE + alpha T^2 KL
    cutmix_beta: float = 0.0  # CutMix Beta(beta, beta); 0 = off (official DFC default)
    cutmix_prob: float = 0.0
    # --- optimisation (DomainBed / official defaults: Adam, lr 5e-5, 32 images per domain)
    steps: int = 5000  # stage 2 (Distill) steps for adip; all steps for erm / kd
    batch_size: int = 32  # per training domain
    lr: float = 5e-5
    align_lr: float = 5e-5
    weight_decay: float = 0.0
    # --- logging / eval
    log_every: int = 50
    eval_every: int = 200  # training-domain validation (model selection; SWAD segments)
    # --- SWAD (official runs: --swad True; LossValley defaults from the official config.yaml)
    swad: bool = False  # dense weight averaging over the validation-loss valley (final stage;
    #                     in Align only its early stop matters, as in the official stage 1)
    swad_mode: SwadModeOption = "by_student"  # official_fix: running average reset only at
    #   steps 3000, 4000, ... (official --swad_fix default); standard: reset at every
    #   validation; by_student: what the official script of the student runs (ViT-B: standard)
    swad_valley: ValleyRule = "official"  # official: released LossValley with its quirks;
    #                                       once: each segment considered once
    swad_n_converge: int = 3
    swad_n_tolerance: int = 6
    swad_tolerance_ratio: float = 0.3
    swad_bn_steps: int = 500  # batches for the SWAD model's BatchNorm statistics (freeze_bn off)
    save_every: int = 1000
    eval_batch_size: int = 128


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in fields(Config)}


def _coerce(name: str, value: Any, typ: Any) -> Any:
    """Convert a TOML or CLI value to the field's type, or raise a ConfigError naming the field."""
    origin = typing.get_origin(typ)
    if origin is Literal:
        choices = typing.get_args(typ)
        if value not in choices:
            raise ConfigError(f"{name}={value!r}: expected one of {list(choices)}")
        return value
    if origin is tuple:
        (item_type, _) = typing.get_args(typ)
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"{name}={value!r}: expected a list")
        return tuple(_coerce(name, v, item_type) for v in items)
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "1", "false", "0"}:
            return value.lower() in {"true", "1"}
        raise ConfigError(f"{name}={value!r}: expected true/false/1/0")
    if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and typ is not str:
        try:
            return typ(value)
        except (ValueError, OverflowError) as err:
            raise ConfigError(f"{name}={value!r}: expected {typ.__name__}") from err
    if not isinstance(value, typ) or isinstance(value, bool) and typ is not bool:
        raise ConfigError(f"{name}={value!r}: expected {typ.__name__}")
    return value


def _check_keys(keys: list[str], where: str) -> None:
    valid = _field_types()
    unknown = [k for k in keys if k not in valid]
    if unknown:
        raise ConfigError(f"unknown config key(s) {unknown} in {where}",
                          f"valid keys: {', '.join(sorted(valid))}")


_POSITIVE = ("synth_per_domain", "teacher_pretrain_per_domain", "teacher_width",
             "teacher_embed_dim", "student_width", "batch_size", "log_every", "eval_every",
             "save_every", "eval_batch_size", "image_size", "swad_n_converge", "swad_n_tolerance")
_NON_NEGATIVE = ("test_domain", "teacher_pretrain_steps", "student_pretrain_steps",
                 "align_steps", "steps", "align_select_from", "swad_bn_steps", "lr", "align_lr",
                 "weight_decay", "kd_temperature", "swad_tolerance_ratio", "cutmix_beta")


def _validate(cfg: Config) -> Config:
    """Range checks that the types cannot express."""
    def bad(name: str, why: str) -> ConfigError:
        return ConfigError(f"{name}={getattr(cfg, name)!r}: {why}", "see configs/paper.toml")

    for name in _POSITIVE:
        if not getattr(cfg, name) > 0:
            raise bad(name, "must be > 0")
    for name in _NON_NEGATIVE:
        value = getattr(cfg, name)
        if not (value >= 0 and math.isfinite(value)):
            raise bad(name, "must be a finite number >= 0")
    for name in ("holdout_fraction", "lmd", "kd_alpha", "cutmix_prob"):
        if not 0 <= getattr(cfg, name) <= 1:
            raise bad(name, "must be in [0, 1]")
    if not 0 < cfg.holdout_fraction < 1:
        raise bad("holdout_fraction", "must be in (0, 1)")
    if cfg.kd_temperature <= 0:
        raise bad("kd_temperature", "must be > 0")
    for t in cfg.prompt_templates or ("",):
        try:
            ok = t.count("{}") == 1 and t.format("x") is not None
        except (IndexError, KeyError, ValueError):
            ok = False
        if not ok:
            raise bad("prompt_templates", 'each template needs exactly one "{}" (the class '
                      'name) and no other braces')
    if cfg.teacher_access == "white_box" and cfg.method != "adip":
        raise bad("teacher_access", "white_box is defined for method=adip (VL2V-SD) only")
    if cfg.data_name == "synthetic" and not cfg.synth_domains:
        raise bad("synth_domains", "needs at least two domains")
    return cfg


def config_from_dict(values: dict[str, Any], where: str = "dict") -> Config:
    """Build a Config from (possibly partial) values, checking keys, types and ranges."""
    _check_keys(list(values), where)
    types = _field_types()
    return _validate(Config(**{k: _coerce(k, v, types[k]) for k, v in values.items()}))


def load_config(path: str | Path) -> Config:
    """Read a TOML preset; its file stem is the default config_name."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"config file not found: {path}", "see configs/*.toml")
    try:
        with path.open("rb") as f:
            values = tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file is not valid TOML: {path}: {err}",
                          "see configs/tiny.toml for the format") from None
    values.setdefault("config_name", path.stem)
    return config_from_dict(values, where=str(path))


def parse_config(argv: list[str] | None = None) -> Config:
    """Defaults, then `--config file.toml`, then `--field value` pairs (later wins)."""
    argv = list(argv or [])
    values: dict[str, Any] = {}
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise ConfigError("--config needs a path", "e.g. --config configs/tiny.toml")
        values = dataclasses.asdict(load_config(argv[i + 1]))
        del argv[i : i + 2]
    if len(argv) % 2:
        raise ConfigError(f"expected --field value pairs, got {argv}",
                          "e.g. --steps 100 --out_dir runs/x")
    overrides = {}
    for flag, value in zip(argv[::2], argv[1::2]):
        if not flag.startswith("--"):
            raise ConfigError(f"expected --field, got {flag!r}", "e.g. --steps 100")
        overrides[flag[2:].replace("-", "_")] = value
    _check_keys(list(overrides), "command line")
    return config_from_dict({**values, **overrides}, where="command line")


def swad_mode_of(cfg: Config) -> str:
    """The SWAD reset schedule a run uses: `by_student` follows the official script of the
    student (scripts/vitb_student/run_stage2.sh passes --swad_fix, so ViT-B runs standard SWAD;
    the ResNet-50, DeiT-S and ViT-S scripts keep the official_fix default)."""
    if cfg.swad_mode != "by_student":
        return cfg.swad_mode
    return "standard" if cfg.student_arch.startswith("vit_base") else "official_fix"


def config_diff(cfg: Config, saved: dict | None) -> str:
    """The config fields that differ between `cfg` and a checkpoint's config dict (first five;
    fields that may change on resume are left out)."""
    saved = saved if isinstance(saved, dict) else {}
    ignore = {"out_dir", "steps", "align_steps", "device", "log_every", "eval_every",
              "save_every", "config_name"}
    diff = [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in dataclasses.asdict(cfg).items()
            if k not in ignore and k in saved and _plain(saved[k]) != _plain(v)]
    return ", ".join(diff[:5]) or "no config difference found"


def _plain(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def config_to_json(cfg: Config) -> str:
    return json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True)
