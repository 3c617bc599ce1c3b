"""Tests for skal.datasets on tiny fake files written to tmp_path (no network)."""

import codecs
import gzip
import inspect
import io
import json
import lzma
import pickle
import re
import tarfile
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_files
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils import Bunch

import skal.datasets as ds
from skal.datasets import _base, _newsgroups

GROUPS = ["sci.space", "alt.atheism", "comp.graphics"]  # deliberately unsorted
WORDS = {
    "sci.space": "orbit rocket launch nasa shuttle",
    "alt.atheism": "god belief atheism religion argument",
    "comp.graphics": "pixel render image polygon shading",
}


def _doc(group, i, split):
    body = f"{WORDS[group]} sample{i} café"
    if split == "test":
        body += " zebratestonly"
    return (
        f"From: someone{i}@example.org\nSubject: headerword{i}\nLines: 9\n\n"
        f"{body}\nIn article <1@x>, bob writes:\n> quotedword here\n"
        f"more {group.split('.')[-1]} text\n\n-- \nsignatureword\n"
    )


def _ng_docs():
    return {
        split: [(g, str(100 + i), _doc(g, i, split)) for g in GROUPS for i in range(3)]
        for split in ("train", "test")
    }


def _write_jsonl(folder):
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(GROUPS)
    for split, docs in _ng_docs().items():
        with lzma.open(folder / f"20news-bydate-{split}.jsonl.xz", "wt") as f:
            for group, fid, text in docs:
                rec = {"split": split, "doc_id": f"{group}/{fid}", "text": text}
                rec.update(newsgroup=group, label=names.index(group))
                f.write(json.dumps(rec) + "\n")


def _write_tree(root):
    for split, docs in _ng_docs().items():
        for group, fid, text in docs:
            path = root / f"20news-bydate-{split}" / group / fid
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("latin-1"))


def _write_tar(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for split, docs in _ng_docs().items():
            for group, fid, text in docs:
                data = text.encode("latin-1")
                info = tarfile.TarInfo(f"20news-bydate-{split}/{group}/{fid}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def _write_pkz(home, tmp_path):
    _write_tree(tmp_path / "extract")
    cache = {
        s: load_files(tmp_path / "extract" / f"20news-bydate-{s}", encoding="latin1")
        for s in ("train", "test")
    }
    home.mkdir(parents=True, exist_ok=True)
    blob = codecs.encode(pickle.dumps(cache), "zlib_codec")
    (home / "20news-bydate_py3.pkz").write_bytes(blob)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network: both fetchers raise URLError; count their calls."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(kwargs)
        raise URLError("no network in tests")

    monkeypatch.setattr(_base, "fetch_openml", refuse)
    monkeypatch.setattr(_newsgroups, "fetch_20newsgroups", refuse)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "sklearn_home"))
    monkeypatch.delenv("SKAL_DATA", raising=False)
    return calls


# ------------------------------------------------------------------ data home
def test_get_data_home_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert ds.get_data_home() == tmp_path / "skal_data"
    monkeypatch.setenv("SKAL_DATA", str(tmp_path / "env"))
    assert ds.get_data_home() == tmp_path / "env"
    assert ds.get_data_home(tmp_path / "arg") == tmp_path / "arg"
    assert not (tmp_path / "env").exists()  # nothing is created


def test_skal_data_env_var_is_used(monkeypatch, tmp_path):
    _write_isolet_csv(tmp_path / "isolet" / "isolet5_test.csv.gz")
    monkeypatch.setenv("SKAL_DATA", str(tmp_path))
    assert ds.load_isolet().X_train.shape[1] == 617


# -------------------------------------------------------------- 20 Newsgroups
def test_20ng_jsonl(tmp_path, offline):
    _write_jsonl(tmp_path / "20newsgroups")
    d = ds.load_20newsgroups(tmp_path)
    assert d.target_names == sorted(GROUPS)
    assert sp.issparse(d.X_train) and d.X_train.format == "csr"
    assert d.X_train.dtype == np.float32
    assert d.X_train.shape == (9, len(d.feature_names)) and d.X_test.shape[0] == 9
    assert d.y_train.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    vocab = set(d.feature_names)
    assert {"orbit", "pixel", "atheism", "café"} <= vocab
    for removed in (
        "headerword0",
        "quotedword",
        "signatureword",
        "the",
        "zebratestonly",
    ):
        assert removed not in vocab  # headers, quotes, footers, stop words, test-only
    assert all("Subject:" not in t and "> quoted" not in t for t in d.texts_train)
    reference = TfidfVectorizer(stop_words="english").fit(d.texts_train)
    np.testing.assert_allclose(
        d.X_test.toarray(), reference.transform(d.texts_test).toarray(), rtol=1e-6
    )
    assert offline == []  # local files: no fetch attempted


@pytest.mark.parametrize("fmt", ["tar", "tree", "sklearn_cache"])
def test_20ng_other_formats_match_jsonl(tmp_path, fmt, monkeypatch):
    _write_jsonl(tmp_path / "ref" / "20newsgroups")
    ref = ds.load_20newsgroups(tmp_path / "ref")
    home = tmp_path / "home"
    if fmt == "tar":
        _write_tar(home / "20newsgroups" / "20news-bydate.tar.gz")
    elif fmt == "tree":
        _write_tree(home / "20newsgroups")
    else:  # the real fetcher, reading only its cache (no download)
        from sklearn.datasets import fetch_20newsgroups

        monkeypatch.setattr(_newsgroups, "fetch_20newsgroups", fetch_20newsgroups)
        _write_pkz(home, tmp_path)
    d = ds.load_20newsgroups(home, download_if_missing=False)
    assert d.texts_train == ref.texts_train and d.texts_test == ref.texts_test
    np.testing.assert_array_equal(d.y_test, ref.y_test)
    assert (d.X_train != ref.X_train).nnz == 0


def test_20ng_vectorizer_options(tmp_path):
    _write_jsonl(tmp_path / "20newsgroups")
    d = ds.load_20newsgroups(
        tmp_path, max_features=4, vectorizer_params={"dtype": np.float64}
    )
    assert d.X_train.shape[1] == 4 and d.X_test.dtype == np.float64
    with pytest.raises(TypeError, match="vectorizer_params"):
        ds.load_20newsgroups(tmp_path, vectorizer_params=["bad"])


def test_20ng_missing_names_paths_and_chains_network_error(tmp_path, offline):
    with pytest.raises(FileNotFoundError) as info:
        ds.load_20newsgroups(tmp_path)
    msg = str(info.value)
    for part in (
        "20news-bydate-train.jsonl.xz",
        "20news-bydate.tar.gz",
        "20news-bydate_py3.pkz",
        str(tmp_path / "sklearn_home"),
        "qwone.com",
        "fetch_20newsgroups",
    ):
        assert part in msg
    assert isinstance(info.value.__cause__, URLError)
    offline.clear()
    with pytest.raises(FileNotFoundError, match="download_if_missing=False"):
        ds.load_20newsgroups(tmp_path, download_if_missing=False)
    assert offline == []


# ------------------------------------------------------------------------ ISOLET
def _isolet_rows(n_per_class, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(1, 27), n_per_class)
    X = rng.uniform(-1, 1, (len(y), 617)).round(4) + y[:, None] / 26
    return X, y


def _write_isolet_csv(path, n_per_class=6):
    X, y = _isolet_rows(n_per_class)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(f"{v:.4f}" for v in row) + f",{lab}" for row, lab in zip(X, y)]
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")


def _write_isolet_uci(path, n_per_class=3):
    X, y = _isolet_rows(n_per_class, seed=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [", ".join(f"{v:.4f}" for v in row) + f", {lab}." for row, lab in zip(X, y)]
    path.write_text("\n".join(lines) + "\n")


def test_isolet_csv_split_and_train_only_scaler(tmp_path, offline):
    _write_isolet_csv(tmp_path / "isolet" / "isolet5_test.csv.gz")
    d = ds.load_isolet(tmp_path, random_state=3)
    assert d.X_train.shape == (124, 617) and d.X_test.shape == (32, 617)
    assert d.X_train.dtype == np.float32 and "156 rows" in d.DESCR
    assert set(d.y_train) == set(range(26)) and d.target_names[0] == "A"
    np.testing.assert_allclose(d.X_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(d.X_train.std(0), 1, atol=1e-4)
    assert np.abs(d.X_test.mean(0)).max() > 1e-3  # scaler not refitted on test
    again = ds.load_isolet(tmp_path, random_state=3)
    np.testing.assert_array_equal(d.X_test, again.X_test)
    assert offline == []


def test_isolet_uses_every_group_once(tmp_path):
    _write_isolet_csv(tmp_path / "isolet" / "isolet5_test.csv.gz")
    _write_isolet_uci(tmp_path / "isolet" / "isolet5.data")  # same group: one used
    _write_isolet_uci(tmp_path / "isolet" / "isolet1+2+3+4.data")
    d = ds.load_isolet(tmp_path)
    assert len(d.y_train) + len(d.y_test) == 26 * 3 * 2
    assert "isolet1+2+3+4.data: 78 rows" in d.DESCR and "isolet5.data:" in d.DESCR
    assert "isolet5_test.csv.gz" not in d.DESCR


def test_isolet_openml_fallback(tmp_path, monkeypatch, offline):
    X, y = _isolet_rows(6)
    fake = Bunch(
        data=X, target=y.astype(str), feature_names=[f"f{i}" for i in range(617)]
    )
    monkeypatch.setattr(_base, "fetch_openml", lambda **kw: offline.append(kw) or fake)
    d = ds.load_isolet(tmp_path)
    assert offline[0]["data_id"] == 300 and offline[0]["as_frame"] is False
    assert offline[0]["data_home"] == str(tmp_path)
    assert sorted(set(d.y_train)) == list(range(26))


def test_isolet_missing(tmp_path, offline):
    with pytest.raises(FileNotFoundError) as info:
        ds.load_isolet(tmp_path)
    msg = str(info.value)
    assert "isolet5_test.csv.gz" in msg and "isolet1+2+3+4.data" in msg
    assert "fetch_openml(data_id=300" in msg and "archive.ics.uci.edu" in msg
    assert isinstance(info.value.__cause__, URLError)


# ------------------------------------------------------------------------ OpenML
def test_load_openml_encodes_and_scales(tmp_path, monkeypatch):
    n = 40
    data = np.empty((n, 2), dtype=object)
    data[:, 0] = np.arange(n, dtype=float)
    data[:, 1] = np.where(np.arange(n) % 2, "b", "a")
    target = np.array(["10", "9"] * (n // 2))
    fake = Bunch(data=data, target=target, feature_names=["num", "cat"])
    monkeypatch.setattr(_base, "fetch_openml", lambda **kw: fake)
    d = ds.load_openml(7, tmp_path, test_size=0.25, scale=False)
    assert list(d.target_names) == ["9", "10"]  # numeric label order
    assert set(d.X_train[:, 1]) == {0.0, 1.0} and d.X_train.dtype == np.float32
    assert d.X_train.shape == (30, 2) and np.bincount(d.y_test).tolist() == [5, 5]
    scaled = ds.load_openml(7, tmp_path)
    np.testing.assert_allclose(scaled.X_train.mean(0), 0, atol=1e-6)


def test_load_openml_errors(tmp_path, offline):
    with pytest.raises(TypeError, match="data_id"):
        ds.load_openml("isolet", tmp_path)
    with pytest.raises(FileNotFoundError, match="fetch_openml\\(data_id=42") as info:
        ds.load_openml(42, tmp_path)
    assert isinstance(info.value.__cause__, URLError)


# -------------------------------------------------------------------- pokerhand
def _poker_lines(n, seed):
    rng = np.random.default_rng(seed)
    suits, ranks = rng.integers(1, 5, (n, 5)), rng.integers(1, 14, (n, 5))
    labels = np.arange(n) % 10
    cols = np.column_stack(
        [np.column_stack([suits, ranks])[:, [0, 5, 1, 6, 2, 7, 3, 8, 4, 9]], labels]
    )
    return "\n".join(",".join(map(str, r)) for r in cols) + "\n"


def _write_poker(folder, n_train=60, n_test=40):
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / "poker-hand-training-true.data.gz", "wt") as f:
        f.write(_poker_lines(n_train, 0))
    with gzip.open(folder / "poker-hand-testing.first99999.data.gz", "wt") as f:
        f.write(_poker_lines(n_test, 1))


def test_pokerhand_uci_encoding(tmp_path, offline):
    _write_poker(tmp_path / "pokerhand")
    d = ds.load_pokerhand(tmp_path, scale=False)
    assert d.X_train.shape == (80, 10) and d.X_test.shape == (20, 10)
    X = np.vstack([d.X_train, d.X_test])
    assert set(np.unique(X[:, 0::2])) <= {1, 2, 3, 4}
    assert X[:, 1::2].min() == 0 and X[:, 1::2].max() == 1
    np.testing.assert_allclose((X[:, 1::2] * 12 + 1) % 1, 0, atol=1e-5)
    assert d.feature_names[:2] == ["s1", "r1"] and d.target_names[9] == "royal flush"
    assert "100 rows pooled" in d.DESCR and offline == []


def test_pokerhand_subsample_and_scale(tmp_path):
    _write_poker(tmp_path / "pokerhand")
    d = ds.load_pokerhand(tmp_path, n_train=30, n_test=7, random_state=1)
    assert d.X_train.shape == (30, 10) and d.X_test.shape == (7, 10)
    np.testing.assert_allclose(d.X_train.mean(0), 0, atol=1e-5)
    again = ds.load_pokerhand(tmp_path, n_train=30, n_test=7, random_state=1)
    np.testing.assert_array_equal(d.X_test, again.X_test)
    with pytest.raises(ValueError, match="n_train"):
        ds.load_pokerhand(tmp_path, n_train=0)
    with pytest.raises(ValueError, match="source"):
        ds.load_pokerhand(tmp_path, source="kaggle")


def test_pokerhand_prefers_full_test_file(tmp_path):
    _write_poker(tmp_path / "pokerhand")
    (tmp_path / "pokerhand" / "poker-hand-testing.data").write_text(_poker_lines(50, 2))
    d = ds.load_pokerhand(tmp_path)
    assert len(d.y_train) + len(d.y_test) == 110  # 60 + 50, not + the 40-row prefix


def test_pokerhand_missing(tmp_path, offline):
    with pytest.raises(FileNotFoundError) as info:
        ds.load_pokerhand(tmp_path)
    msg = str(info.value)
    assert "poker-hand-training-true.data" in msg and "data_id=155" in msg
    assert isinstance(info.value.__cause__, URLError)
    with pytest.raises(FileNotFoundError, match="UCI"):
        ds.load_pokerhand(tmp_path, source="uci")


# ------------------------------------------------------------------------ digits
def test_digits_split():
    d = ds.load_digits_split(random_state=0)
    assert d.X_train.shape == (1347, 64) and d.X_test.shape == (450, 64)
    assert (
        d.X_train.dtype == np.float32 and 0 <= d.X_train.min() <= d.X_train.max() <= 1
    )
    np.testing.assert_allclose(
        np.bincount(d.y_test) / len(d.y_test),
        np.bincount(d.y_train) / len(d.y_train),
        atol=0.01,
    )


# ------------------------------------------------------------------ real copies
def _shared_data():
    here = Path(__file__).resolve().parents[2]
    for cand in (here.parent / "shared" / "data", Path("/work/shared/data")):
        if (cand / "isolet").is_dir():
            return cand
    return None


SHARED = _shared_data()


@pytest.mark.skipif(SHARED is None, reason="shared/data copies not available")
def test_real_copies_row_counts():
    """Row counts from the PROVENANCE.md files of shared/data."""
    isolet = ds.load_isolet(SHARED, download_if_missing=False)
    assert len(isolet.y_train) + len(isolet.y_test) == 1559
    poker = ds.load_pokerhand(SHARED, source="uci", download_if_missing=False)
    assert len(poker.y_train) + len(poker.y_test) == 25010 + 99999
    # 20NG: the reader only; vectorizing 18,846 documents would take seconds.
    docs, _ = _newsgroups._ng_docs(SHARED, download_if_missing=False)
    assert [len(docs["train"]), len(docs["test"])] == [11314, 7532]
    groups = sorted({g for g, _, _ in docs["train"]})
    assert len(groups) == 20
    counts = [sum(g == groups[k] for g, _, _ in docs["train"]) for k in (0, 19)]
    assert counts == [480, 377]


@pytest.mark.parametrize("name", ds.__all__)
def test_every_parameter_is_documented_once_placeholders_are_filled(name):
    """Shared docstring entries (``{data_home}`` ...) are filled in at import."""
    function = getattr(ds, name)
    doc = function.__doc__
    section = doc[doc.index("Parameters\n") : doc.index("Returns\n")]
    assert not re.search(r"^\s*\{\w+\}\s*$", section, flags=re.MULTILINE)
    documented = set()
    for line in section.splitlines()[2:]:
        if " : " in line and line.startswith("    ") and not line.startswith(" " * 5):
            documented.update(n.strip() for n in line.split(" : ")[0].split(","))
    assert documented == set(inspect.signature(function).parameters), name


def test_shared_docs_rejects_an_unknown_entry():
    def loader():
        """Load.

        Parameters
        ----------
        {no_such_entry}
        """

    with pytest.raises(KeyError, match="no_such_entry"):
        _base.shared_docs(loader)
