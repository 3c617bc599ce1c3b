"""20 Newsgroups (bydate), TF-IDF."""

import json
import lzma
import os
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import fetch_20newsgroups, load_files
from sklearn.datasets._twenty_newsgroups import (
    strip_newsgroup_footer,
    strip_newsgroup_header,
    strip_newsgroup_quoting,
)
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils import Bunch

from ._base import (
    _NG_URL,
    _SPLITS,
    _download,
    _first,
    get_data_home,
    shared_docs,
)


# ------------------------------------------------------------------ 20 Newsgroups
# Each reader returns {split: [(newsgroup, file id, raw text), ...]}.
def _ng_from_jsonl(paths):
    docs = {}
    for split, path in zip(_SPLITS, paths):
        with lzma.open(path, "rt", encoding="utf-8") as f:
            recs = [json.loads(line) for line in f if line.strip()]
        docs[split] = [
            (r["newsgroup"], r["doc_id"].rsplit("/", 1)[-1], r["text"]) for r in recs
        ]
    return docs


def _ng_from_tar(path):
    docs = {split: [] for split in _SPLITS}
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            parts = PurePosixPath(member.name).parts
            if member.isfile() and len(parts) >= 3:
                split = parts[-3].removeprefix("20news-bydate-")
                if split in docs:
                    text = tar.extractfile(member).read().decode("latin-1")
                    docs[split].append((parts[-2], parts[-1], text))
    return docs


def _ng_from_bunches(bunches):
    """From scikit-learn Bunches holding raw texts and their file names."""
    return {
        split: [
            (Path(f).parent.name, Path(f).name, t) for f, t in zip(b.filenames, b.data)
        ]
        for split, b in zip(_SPLITS, bunches)
    }


def _ng_docs(home, download_if_missing):
    folder = home / "20newsgroups"
    jsonl = [folder / f"20news-bydate-{s}.jsonl.xz" for s in _SPLITS]
    tar = folder / "20news-bydate.tar.gz"
    dirs = [folder / f"20news-bydate-{s}" for s in _SPLITS]
    sk_home = os.environ.get("SCIKIT_LEARN_DATA", "~/scikit_learn_data")
    pkz = "20news-bydate_py3.pkz"  # the name fetch_20newsgroups caches under
    caches = [home / pkz, Path(sk_home).expanduser() / pkz]
    if all(p.exists() for p in jsonl):
        return _ng_from_jsonl(jsonl), "local jsonl.xz files"
    if tar.exists():
        return _ng_from_tar(tar), tar.name
    if all(d.is_dir() for d in dirs):
        bunches = [load_files(d, encoding="latin1", shuffle=False) for d in dirs]
        return _ng_from_bunches(bunches), "extracted bydate folders"
    cache = _first(caches)  # scikit-learn's own cache needs no network
    fetch_home = str(home if cache is None else cache.parent)
    how = (
        f"download {_NG_URL} into {folder}, or run "
        f"sklearn.datasets.fetch_20newsgroups(data_home={str(home)!r})"
    )
    bunches = [
        _download(
            lambda s=s: fetch_20newsgroups(
                data_home=fetch_home, subset=s, shuffle=False
            ),
            download_if_missing or cache is not None,
            "20 Newsgroups",
            [*jsonl, tar, *dirs, *caches],
            how,
        )
        for s in _SPLITS
    ]
    return _ng_from_bunches(bunches), "scikit-learn fetch_20newsgroups"


def _ng_key(doc):
    return doc[0], (0, int(doc[1])) if doc[1].isdigit() else (1, doc[1])


@shared_docs
def load_20newsgroups(
    data_home=None,
    *,
    max_features=None,
    vectorizer_params=None,
    download_if_missing=True,
):
    """Load 20 Newsgroups (bydate split) as TF-IDF features.

    Headers, footers and quotes are removed with scikit-learn's own functions, so
    the texts equal ``fetch_20newsgroups(remove=('headers', 'footers', 'quotes'))``.
    A TfidfVectorizer with ``stop_words='english'`` is fitted on the training texts
    only. Sources, in order, under ``<data_home>/20newsgroups/``:
    ``20news-bydate-{train,test}.jsonl.xz`` (records with ``newsgroup``, ``doc_id``
    and the raw latin-1 ``text``), the original ``20news-bydate.tar.gz``, its
    extracted ``20news-bydate-{train,test}/`` folders; then scikit-learn's
    ``20news-bydate_py3.pkz`` cache (in ``data_home`` or scikit-learn's data home);
    then ``fetch_20newsgroups(data_home=data_home)``. Documents are ordered by
    newsgroup, then file id, whatever the source.

    Parameters
    ----------
    {data_home}
    max_features : int, default=None
        Vocabulary size limit of the vectorizer.
    vectorizer_params : dict, default=None
        Extra TfidfVectorizer arguments; they override the defaults
        ``stop_words='english', dtype=np.float32``.
    download_if_missing : bool, default=True
        Download with scikit-learn when no local copy is found.

    Returns
    -------
    data : Bunch
        ``X_train, X_test`` (CSR), ``y_train, y_test`` (int64), ``target_names``
        (the 20 sorted newsgroup names, as scikit-learn orders them),
        ``feature_names``, the fitted ``vectorizer``, the cleaned
        ``texts_train, texts_test`` and ``DESCR``.
    """
    if vectorizer_params is not None and not isinstance(vectorizer_params, dict):
        raise TypeError(f"vectorizer_params must be a dict, got {vectorizer_params!r}")
    docs, source = _ng_docs(get_data_home(data_home), download_if_missing)
    names = sorted({d[0] for split in _SPLITS for d in docs[split]})
    index = {name: i for i, name in enumerate(names)}
    out = Bunch(target_names=names)
    for split in _SPLITS:
        ordered = sorted(docs[split], key=_ng_key)
        out[f"y_{split}"] = np.array([index[d[0]] for d in ordered], dtype=np.int64)
        out[f"texts_{split}"] = [
            strip_newsgroup_quoting(
                strip_newsgroup_footer(strip_newsgroup_header(d[2]))
            )
            for d in ordered
        ]
    params = {"stop_words": "english", "dtype": np.float32, **(vectorizer_params or {})}
    if max_features is not None:
        params["max_features"] = max_features
    vec = TfidfVectorizer(**params)
    out.X_train = sp.csr_matrix(vec.fit_transform(out.texts_train))
    out.X_test = sp.csr_matrix(vec.transform(out.texts_test))
    out.vectorizer, out.feature_names = vec, vec.get_feature_names_out()
    out.DESCR = (
        f"20 Newsgroups bydate ({source}): {len(out.y_train)} train / "
        f"{len(out.y_test)} test documents, {len(names)} classes. Headers, footers "
        "and quotes removed (scikit-learn's strip_newsgroup_* functions); TF-IDF "
        f"(stop_words='english', {out.X_train.shape[1]} features) fitted on train."
    )
    return out
