import numpy as np
import pytest
import torch

from gaussian_shell_maps.tools import export_ply, import_ply, repose_labels, turntable_labels


def test_ply_round_trip(tmp_path, rng):
    n = 40
    g = {"means": torch.randn(n, 3, generator=rng),
         "quats": torch.nn.functional.normalize(torch.randn(n, 4, generator=rng), dim=-1),
         "scales": torch.rand(n, 3, generator=rng) * 0.05 + 1e-3,
         "opacities": torch.rand(n, generator=rng) * 0.9 + 0.05,
         "colors": torch.rand(n, 3, generator=rng)}
    path = export_ply(tmp_path / "g.ply", **g)
    back = import_ply(path)
    for k, v in g.items():
        torch.testing.assert_close(back[k], v, atol=1e-5, rtol=1e-5)  # float32 log/logit round trip
    head = path.read_bytes()[:400].decode("ascii", "ignore")
    assert "property float f_dc_0" in head and "property float rot_3" in head


def test_ply_missing_fields_rejected(tmp_path):
    p = tmp_path / "bad.ply"
    p.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 0\n"
                  b"property float x\nend_header\n")
    with pytest.raises(ValueError, match="missing 3DGS fields"):
        import_ply(p)


def test_turntable_and_repose_labels_keep_identity_fields(rng):
    from gaussian_shell_maps.data import random_labels

    label = random_labels(1, rng)[0]
    tt = turntable_labels(label, 4)
    assert tt.shape == (4, 107)
    torch.testing.assert_close(tt[:, 25:], label[25:].expand(4, -1))
    poses = torch.randn(3, 69, generator=rng)
    rp = repose_labels(label, poses)
    torch.testing.assert_close(rp[:, 28:97], poses)
    torch.testing.assert_close(rp[:, :28], label[:28].expand(3, -1))


# -------------------------------------------------------- official label convention (issue 25)
def _official_label():
    from gaussian_shell_maps.cameras import official_labels

    # a pose_example.npy-like label: camera on -z, body flipped by ~(pi, 0, 0), fx ~ 4.89
    label = official_labels(torch.zeros(1, 69), torch.zeros(1, 10), torch.tensor([0.1]))[0]
    label[25:28] += torch.tensor([0.05, -0.02, -0.03])  # not exactly pi about x
    return label


def _joints_px(template, labels, res=64):
    from gaussian_shell_maps import shells as sh
    from gaussian_shell_maps.cameras import project_points, split_label

    cam = split_label(labels, res)
    _, joints = sh.pose_shells(template, template.v_template[None], cam["betas"],
                               cam["body_pose"], cam["global_orient"])
    return project_points(joints, cam["viewmats"], cam["Ks"]), joints, cam


def test_turntable_of_an_official_label_stays_upright_and_in_frame(template):
    label = _official_label()
    tt = turntable_labels(label, 8)
    torch.testing.assert_close(tt[0], label)
    torch.testing.assert_close(tt[:, 16:], label[16:].expand(8, -1))  # intrinsics, SMPL kept
    uv, joints, cam = _joints_px(template, tt)
    assert ((uv > 0) & (uv < 64)).all()
    assert (uv[:, 15, 1] < uv[:, 0, 1]).all()  # upright in every frame
    # the camera goes round the body: the body's left hip (joint 1) is seen left/right of the
    # pelvis in turn, and half way round the depth order of the two hips is swapped
    cam_z = (joints @ cam["viewmats"][:, :3, :3].transpose(1, 2) + cam["viewmats"][:, None, :3, 3])
    side = uv[:, 1, 0] - uv[:, 2, 0]
    depth = cam_z[:, 1, 2] - cam_z[:, 2, 2]
    assert side[0] * side[4] < 0 and depth[2] * depth[6] < 0


def test_repose_takes_the_official_novel_pose_orientation_sequence(template, tmp_path):
    from gaussian_shell_maps.tools import load_pose_sequence

    # seq_novel_pose.npy: [21, 3] global orientations near (pi, 0, z) with z swinging +-0.5
    z = torch.cat([torch.linspace(-0.07, 0.47, 6), torch.linspace(0.36, -0.6, 10),
                   torch.linspace(-0.5, -0.07, 5)])
    seq = torch.stack([torch.full((21,), 3.08), torch.full((21,), -0.03), z], 1)
    np.save(tmp_path / "seq_novel_pose.npy", seq.numpy())
    seq = load_pose_sequence(tmp_path / "seq_novel_pose.npy")
    label = _official_label()
    labels = repose_labels(label, seq)
    torch.testing.assert_close(labels[:, 25:28], seq)
    torch.testing.assert_close(labels[:, 28:], label[28:].expand(21, -1))
    uv, _, _ = _joints_px(template, labels)
    assert ((uv > 0) & (uv < 64)).all() and (uv[:, 15, 1] < uv[:, 0, 1]).all()
    with pytest.raises(ValueError, match="expected a float array"):
        np.save(tmp_path / "bad.npy", np.zeros((4, 5)))
        load_pose_sequence(tmp_path / "bad.npy")
    with pytest.raises(ValueError, match="expected .F, 69. body poses"):
        repose_labels(label, torch.zeros(3, 10))


def test_export_ply_builds_rows_on_the_gaussians_device():
    """eval.py crashed on CUDA: a CPU torch.zeros concatenated with CUDA tensors. Shown here on
    the 'meta' device, which refuses mixing with CPU tensors just as CUDA does."""
    from gaussian_shell_maps.tools import ply_rows

    g = [torch.zeros(5, k, device="meta") for k in (3, 4, 3)]
    rows = ply_rows(g[0], g[1], g[2], torch.zeros(5, device="meta"), torch.zeros(5, 3,
                                                                                  device="meta"))
    assert rows.shape == (5, 17) and rows.device.type == "meta"
