import numpy as np
import pytest
import tifffile

from pathdino.slide import SlideError, TiffSlide, open_slide, write_pyramidal_tiff


@pytest.fixture
def pyramid(tmp_path, rng):
    image = rng.integers(0, 256, (200, 328, 3), dtype=np.uint8)
    path = tmp_path / "slide.tif"
    write_pyramidal_tiff(path, image, levels=3, tile=64)
    return path, image


def test_level0_pixels_equal_written_array(pyramid):
    path, image = pyramid
    with open_slide(path) as slide:
        assert slide.level_dimensions == [(328, 200), (164, 100), (82, 50)]
        np.testing.assert_array_equal(slide.read_region((0, 0), 0, (328, 200)), image)
        # an unaligned window that spans several tiles
        np.testing.assert_array_equal(slide.read_region((37, 61), 0, (150, 90)),
                                      image[61:151, 37:187])
        assert slide.objective_power == 20.0


def test_coarser_level_and_outside_is_white(pyramid):
    path, image = pyramid
    with TiffSlide(path) as slide:
        level1 = slide.read_region((0, 0), 1, (164, 100))
        expected = image.reshape(100, 2, 164, 2, 3).mean((1, 3)).round().astype(np.uint8)
        np.testing.assert_array_equal(level1, expected)
        corner = slide.read_region((320, 190), 0, (20, 20))
        np.testing.assert_array_equal(corner[:10, :8], image[190:200, 320:328])
        assert (corner[10:] == 255).all() and (corner[:, 8:] == 255).all()
        thumb, level = slide.get_thumbnail(100)
        assert max(thumb.shape[:2]) <= 100 and level >= 1


def test_non_pyramidal_tiff_is_rejected(tmp_path, rng):
    path = tmp_path / "flat.tif"
    tifffile.imwrite(path, rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), tile=(32, 32))
    with pytest.raises(SlideError, match="not pyramidal"):
        TiffSlide(path)
    assert TiffSlide(path, require_pyramid=False).level_dimensions == [(64, 64)]


def test_corrupted_and_missing_files(tmp_path, pyramid):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00 this is not a tiff")
    with pytest.raises(SlideError, match="cannot read"):
        TiffSlide(bad)
    with pytest.raises(FileNotFoundError):
        TiffSlide(tmp_path / "missing.svs")
    # truncated tile data: header intact, pixel data cut off
    path, _ = pyramid
    data = path.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(SlideError), TiffSlide(cut) as slide:
        slide.read_region((0, 0), 0, slide.level_dimensions[0])
