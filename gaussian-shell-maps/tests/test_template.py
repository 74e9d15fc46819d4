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
