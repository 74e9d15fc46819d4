import pickle

import pytest
import torch

from gaussian_shell_maps.template import (
    NUM_JOINTS,
    SMPL_PARENTS,
    build_procedural_arrays,
    load_body_template,
    write_procedural_smpl,
)


def test_procedural_template_has_smpl_layout(template):
    v = template.v_template.shape[0]
    assert template.shapedirs.shape == (v, 3, 10)
    assert template.posedirs.shape == (207, v * 3)
    assert template.J_regressor.shape == (NUM_JOINTS, v)
    assert template.lbs_weights.shape == (v, NUM_JOINTS)
    assert template.parents.tolist() == SMPL_PARENTS
    torch.testing.assert_close(template.lbs_weights.sum(1), torch.ones(v))
    assert template.ft.shape == template.faces.shape
    assert template.vt.min() >= 0 and template.vt.max() <= 1


def test_missing_smpl_files_name_the_expected_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="SMPL_NEUTRAL"):
        load_body_template(str(tmp_path))


def test_malformed_smpl_file_gives_clear_error(tmp_path):
    (tmp_path / "smpl").mkdir()
    arrays = build_procedural_arrays()
    del arrays["J_regressor"]
    with (tmp_path / "smpl" / "SMPL_NEUTRAL.pkl").open("wb") as f:
        pickle.dump(arrays, f)
    (tmp_path / "smpl_uv.obj").write_text("v 0 0 0\nvt 0 0\nf 1/1 1/1 1/1\n")
    with pytest.raises(ValueError, match="could not load SMPL"):
        load_body_template(str(tmp_path))


def test_user_path_with_uv_obj_loads(tmp_path):
    write_procedural_smpl(tmp_path)
    arrays = build_procedural_arrays()
    lines = [f"v {x} {y} {z}" for x, y, z in arrays["v_template"]]
    lines += [f"vt {u} {v}" for u, v in arrays["vt"]]
    lines += ["f " + " ".join(f"{a + 1}/{t + 1}" for a, t in zip(f, ft))
              for f, ft in zip(arrays["f"], arrays["ft"])]
    (tmp_path / "smpl_uv.obj").write_text("\n".join(lines))
    t = load_body_template(str(tmp_path))
    assert t.vt.shape == arrays["vt"].shape
    # UV obj with a different vertex count is rejected
    (tmp_path / "smpl_uv.obj").write_text("v 0 0 0\nvt 0 0\nf 1/1 1/1 1/1\n")
    with pytest.raises(ValueError, match="triangles"):
        load_body_template(str(tmp_path))


# ------------------------------------------------------------ meshes and assets (issue 25)
def test_read_obj_triangulates_polygons_and_rejects_bad_indices(tmp_path):
    from gaussian_shell_maps.runtime import DataError
    from gaussian_shell_maps.template import read_obj

    path = tmp_path / "m.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\n"
                    "f 1/1/1 2/2/1 3/3/1 4/4/1\nf -4/-4 -3/-3 -1/-1\n")
    mesh = read_obj(path)
    assert mesh["f"].tolist() == [[0, 1, 2], [0, 2, 3], [0, 1, 3]]  # fan + relative indices
    assert mesh["ft"].tolist() == mesh["f"].tolist()
    path.write_text("v 0 0 0\nv 1 0 0\nvt 0 0\nf 1/1 2/1 5/1\n")
    with pytest.raises(DataError, match="past the 2 given"):
        read_obj(path)
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(DataError, match="without UV"):
        read_obj(path)
    path.write_text("v 0 0 zero\nf 1 1 1\n")
    with pytest.raises(DataError, match="line 1"):
        read_obj(path)


def test_uv_mesh_with_smpl_counts_but_other_triangles_is_rejected(tmp_path):
    """Counts alone would accept it: same vertex and face counts, 10 triangles rewired."""
    write_procedural_smpl(tmp_path)
    arrays = build_procedural_arrays()
    faces = arrays["f"].copy()
    faces[:10] = faces[100:110]
    from gaussian_shell_maps.template import write_obj

    write_obj(tmp_path / "smpl_uv.obj", arrays["v_template"], faces, arrays["vt"], arrays["ft"])
    with pytest.raises(ValueError, match="10 of 5808 triangles are not SMPL's"):
        load_body_template(str(tmp_path))


def test_base_mesh_checks_go_beyond_counts(tmp_path, template):
    from gaussian_shell_maps.runtime import DataError
    from gaussian_shell_maps.template import load_shell_base, write_obj

    v, f, vt, ft = template.v_template, template.faces, template.vt, template.ft
    shuffled = ft[torch.randperm(len(ft), generator=torch.Generator().manual_seed(0))]
    write_obj(tmp_path / "scrambled.obj", v, f, vt, shuffled)  # right counts, foreign UV faces
    with pytest.raises(DataError, match="continuous in UV"):
        load_shell_base(template, str(tmp_path), "scrambled.obj")
    write_obj(tmp_path / "far.obj", v * 100, f, vt, ft)  # centimetres instead of metres
    with pytest.raises(DataError, match="away from the SMPL template"):
        load_shell_base(template, str(tmp_path), "far.obj")
    write_obj(tmp_path / "ok.obj", v, f, vt, ft)
    write_obj(tmp_path / "short.obj", v[:-3], f[:10])
    with pytest.raises(DataError, match="vertices"):
        load_shell_base(template, str(tmp_path), "ok.obj", "short.obj")


def test_paper_style_asset_names_build_the_models(standin_assets):
    """The paper preset's asset keys on the stand-in assets folder: knn-skinned base mesh,
    shrunk inner shells, mask_uv.png and parts_vertices.yaml all reach the generator."""
    from tests_paths import TINY

    from gaussian_shell_maps.builders import build_models
    from gaussian_shell_maps.config import parse_config
    from gaussian_shell_maps.model import load_uv_mask
    from gaussian_shell_maps.runtime import ConfigError
    from gaussian_shell_maps.template import STANDIN_FILES, read_part_vertices

    names = [x for k, n in STANDIN_FILES.items() for x in (f"--{k}", n)]
    cfg = parse_config(["--config", TINY, "--num_gaussians", "200", "--smpl_path",
                        str(standin_assets), *names])
    _, gen, _, _ = build_models(cfg, torch.device("cpu"))
    assert not gen.rig.same_topology and gen.rig.flips.sum() == 0
    torch.testing.assert_close(gen.uv_mask, load_uv_mask(
        standin_assets / "smpl" / "mask_uv.png", cfg.tex_resolution))
    assert torch.equal(gen.rig.head_ids, read_part_vertices(
        standin_assets / "smpl" / "parts_vertices.yaml"))
    with pytest.raises(ConfigError, match="smpl_path is empty"):
        build_models(parse_config(["--config", TINY, *names]), torch.device("cpu"))
