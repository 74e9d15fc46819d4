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
