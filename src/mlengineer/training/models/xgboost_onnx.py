"""An XGBoost booster as an ONNX tree ensemble, for one row in tens of microseconds instead of hundreds.

    data = booster_to_onnx(booster)          # bytes of an ONNX model: float32 rows (n, f) -> margins (n, k)
    trees = OnnxTrees(data, "binary")        # one ONNX Runtime session on one thread
    p = trees.predict(row)                   # what ``booster.inplace_predict(row)`` answers, in float32
    rows = boundary_rows(booster, sample)    # rows on and beside every split, for checking the two agree

The graph is written from the booster's own JSON model (``save_raw("json")``), so categorical splits and
each node's direction for missing values come through as XGBoost decides them: a numeric split sends
``x < threshold`` left; a categorical split sends the categories of its set right, as a chain of
``BRANCH_EQ`` nodes that share their true child, and everything else (other codes, negative ones) left; a
missing value follows ``default_left``. Category codes are whole numbers (what the encoder writes).

The answers match XGBoost's to the float32 bit where possible: XGBoost adds the trees one by one to its base
margin in float32, and ONNX Runtime adds them in the same order, also in float32, from zero; so the base
margin is folded into the first tree of each output (``base + leaf`` rounded once, as XGBoost rounds it),
and the sigmoid and softmax are XGBoost's own float32 formulas, applied here to the margins. The margins are
equal to the bit; a probability may differ in its last bit where ``exp`` rounds differently from the C
library's ``expf`` (up to about 1e-7, rarely).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

__all__ = ["OBJECTIVES", "Forest", "OnnxTrees", "UnsupportedModel", "booster_to_onnx", "boundary_rows"]

#: the objectives this module knows the output transform of, by task kind
OBJECTIVES = {"binary:logistic": "binary", "multi:softprob": "multiclass", "reg:squarederror": "regression"}
_OPSET_ML = 3  # ai.onnx.ml's TreeEnsembleRegressor as ONNX Runtime has run it since 1.10
_SIGMOID_CAP = np.float32(88.7)  # XGBoost's Sigmoid caps -x there, so exp never overflows


class UnsupportedModel(ValueError):
    """The booster has something the ONNX form here does not express (a linear booster, DART, vector
    leaves, an objective without a known transform): the caller keeps XGBoost's own prediction."""


def _model_json(booster: Any) -> dict[str, Any]:
    import orjson

    model = orjson.loads(bytes(booster.save_raw("json")))
    learner = model["learner"]
    gb = learner["gradient_booster"]
    if gb.get("name") != "gbtree":
        raise UnsupportedModel(f"booster {gb.get('name')!r} (only gbtree is compiled)")
    objective = learner["objective"]["name"]
    if objective not in OBJECTIVES:
        raise UnsupportedModel(f"objective {objective!r}")
    if int(learner["learner_model_param"].get("num_target", "1")) != 1:
        raise UnsupportedModel("more than one target")
    return model


def _base_margins(learner: dict[str, Any], k: int) -> np.ndarray:
    """XGBoost's starting margin per output, in float32 as it keeps it: ``base_score`` is stored in output
    space (a probability for the logistic objective) and turned into a margin by the objective."""
    raw = str(learner["learner_model_param"]["base_score"]).strip("[]")
    base = np.asarray([float(v) for v in raw.split(",")], dtype=np.float32)
    if base.size == 1 and k > 1:
        base = np.repeat(base, k)
    if learner["objective"]["name"] == "binary:logistic":
        one = np.float32(1.0)
        base = (-np.log(one / base - one)).astype(np.float32)
    return base


_MODES = np.asarray([b"BRANCH_LT", b"BRANCH_EQ", b"LEAF"], dtype=object)
_LT, _EQ, _LEAF = 0, 1, 2


def _column(trees: list[dict[str, Any]], key: str, dtype: Any, sizes: list[int]) -> np.ndarray:
    """One field of every node of every tree, end to end (``split_type`` is absent from old models)."""
    if key == "split_type" and not all(key in t for t in trees):
        return np.zeros(sum(sizes), dtype=dtype)
    return np.fromiter(itertools.chain.from_iterable(t[key] for t in trees), dtype=dtype, count=sum(sizes))


class Forest:
    """A booster's trees as its JSON model holds them, read once into flat node arrays (every tree's nodes
    end to end): ``to_onnx()`` and ``boundary_rows()``."""

    def __init__(self, booster: Any) -> None:
        learner = _model_json(booster)["learner"]
        gb = learner["gradient_booster"]["model"]
        self.kind = OBJECTIVES[learner["objective"]["name"]]
        self.k = max(1, int(learner["learner_model_param"].get("num_class", "0")))
        self.n_features = int(learner["learner_model_param"]["num_feature"])
        trees: list[dict[str, Any]] = gb["trees"]
        if any(int(t["tree_param"].get("size_leaf_vector", "1")) > 1 for t in trees):
            raise UnsupportedModel("vector leaves (multi_strategy=multi_output_tree)")
        self.base = _base_margins(learner, self.k)
        self.groups = np.asarray([int(g) for g in gb["tree_info"]], dtype=np.int64)
        self.sizes = [len(t["left_children"]) for t in trees]
        self.tree = np.repeat(np.arange(len(trees), dtype=np.int64), self.sizes)
        starts = np.cumsum([0, *self.sizes])[:-1]
        self.node = np.arange(len(self.tree), dtype=np.int64) - np.repeat(starts, self.sizes)
        self.left = _column(trees, "left_children", np.int64, self.sizes)
        self.right = _column(trees, "right_children", np.int64, self.sizes)
        self.feature = _column(trees, "split_indices", np.int64, self.sizes)
        self.cond = _column(trees, "split_conditions", np.float32, self.sizes)
        self.default_left = _column(trees, "default_left", np.int64, self.sizes)
        self.split_type = _column(trees, "split_type", np.int64, self.sizes)
        self.leaf = self.left == -1
        #: the category set of each categorical split, by its position in the flat arrays
        self.cats = {int(starts[t] + n): c for t, tree in enumerate(trees) if tree.get("categories_nodes")
                     for n, c in _categories(tree).items()}

    def to_onnx(self) -> bytes:
        """Input ``X`` float32 (n, features), output ``margin`` float32 (n, k): the scores before the
        sigmoid or softmax."""
        from onnx import TensorProto, helper

        node = helper.make_node("TreeEnsembleRegressor", ["X"], ["margin"], domain="ai.onnx.ml")
        node.attribute.extend([
            helper.make_attribute("n_targets", self.k), helper.make_attribute("aggregate_function", "SUM"),
            helper.make_attribute("post_transform", "NONE")])
        for name, values in {**self._nodes(), **self._leaves()}.items():
            node.attribute.append(_attribute(name, values))
        graph = helper.make_graph(
            [node], "xgboost", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, self.n_features])],
            [helper.make_tensor_value_info("margin", TensorProto.FLOAT, [None, self.k])])
        model = helper.make_model(graph, producer_name="mlengineer", opset_imports=[
            helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", _OPSET_ML)])
        model.ir_version = 8  # what ONNX Runtime 1.14 and later read
        return bytes(model.SerializeToString())

    def _nodes(self) -> dict[str, np.ndarray]:
        """The ``nodes_*`` fields: a numeric split sends ``x < threshold`` to the true (left) child, a
        categorical one becomes a chain of equality tests (``_category_chain``)."""
        leaf = self.leaf
        fields = {
            "nodes_treeids": self.tree.copy(), "nodes_nodeids": self.node.copy(),
            "nodes_featureids": np.where(leaf, 0, self.feature), "nodes_modes": _MODES[np.where(leaf, _LEAF, _LT)],
            "nodes_values": np.where(leaf, np.float32(0), self.cond), "nodes_truenodeids": np.where(leaf, 0, self.left),
            "nodes_falsenodeids": np.where(leaf, 0, self.right),
            "nodes_missing_value_tracks_true": np.where(leaf, 0, self.default_left)}
        heads: list[tuple[Any, ...]] = []
        extra: list[tuple[Any, ...]] = []
        next_id = list(self.sizes)  # a chain's extra nodes take ids after their tree's own
        splits = np.flatnonzero(~leaf & (self.split_type == 1))
        for i in splits.tolist():
            t = int(self.tree[i])
            chain = _category_chain(t, int(self.node[i]), int(self.feature[i]), self.cats.get(i, []),
                                    int(self.left[i]), int(self.right[i]), bool(self.default_left[i]), next_id[t])
            heads.append(chain[0])
            extra += chain[1:]
            next_id[t] += len(chain) - 1
        if heads:
            for c, key in enumerate(fields):
                fields[key][splits] = np.asarray([h[c] for h in heads], dtype=fields[key].dtype)
        if extra:
            columns = list(zip(*extra, strict=True))
            fields = {key: np.concatenate([fields[key], np.asarray(columns[c], dtype=fields[key].dtype)])
                      for c, key in enumerate(fields)}
            # ONNX Runtime reads a tree's nodes as one run, its root first: the chains join their own tree
            order = np.argsort(fields["nodes_treeids"], kind="stable")
            fields = {key: values[order] for key, values in fields.items()}
        return fields

    def _leaves(self) -> dict[str, np.ndarray]:
        """The ``target_*`` fields. XGBoost adds each tree to its base margin in float32, and ONNX Runtime
        adds the same trees in the same order from zero: so the base margin is added to the leaves of each
        output's first tree here, in float32, the one rounding XGBoost does at that step."""
        tree, groups = self.tree[self.leaf], self.groups
        weights = self.cond[self.leaf].copy()
        first = {int(g): int(np.argmax(groups == g)) for g in np.unique(groups)}
        at_first = np.isin(tree, list(first.values()))
        weights[at_first] = (self.base[groups[tree[at_first]]] + weights[at_first]).astype(np.float32)
        fields = {"target_treeids": tree, "target_nodeids": self.node[self.leaf], "target_ids": groups[tree],
                  "target_weights": weights}
        missing = sorted(set(range(self.k)) - set(first))  # an output without trees: one leaf, its base
        if missing:
            t = len(groups) + np.arange(len(missing), dtype=np.int64)
            more = {"target_treeids": t, "target_nodeids": np.zeros(len(t), dtype=np.int64),
                    "target_ids": np.asarray(missing, dtype=np.int64), "target_weights": self.base[missing]}
            fields = {key: np.concatenate([fields[key], more[key].astype(fields[key].dtype)]) for key in fields}
        return fields

    def boundary_rows(self, sample: np.ndarray | None, n: int = 300, seed: int = 0) -> np.ndarray:
        """``n`` float32 rows that put each feature on a split threshold, just below one, missing, or at a
        value of the ``sample`` rows; categorical features on a category some split names, or an unknown
        one. Where a compiled ensemble and XGBoost could disagree, such rows find it."""
        numeric = ~self.leaf & (self.split_type == 0)
        points = [np.concatenate([c, np.nextafter(c, np.float32(-np.inf))])
                  for c in (np.unique(self.cond[numeric & (self.feature == j)]) for j in range(self.n_features))]
        for i, cats in self.cats.items():
            j = int(self.feature[i])
            points[j] = np.concatenate([points[j], np.asarray([*cats, -1], dtype=np.float32)])
        rng = np.random.default_rng(seed)
        out = np.full((n, self.n_features), np.nan, dtype=np.float32)
        for j in range(self.n_features):
            options = np.unique(points[j]) if len(points[j]) else np.zeros(1, dtype=np.float32)
            out[:, j] = options[rng.integers(0, len(options), n)]
            if sample is not None and len(sample):
                take = rng.random(n) < 0.3
                out[take, j] = np.asarray(sample, dtype=np.float32)[rng.integers(0, len(sample), n), j][take]
            out[rng.random(n) < 0.1, j] = np.nan
        return out


def _attribute(name: str, values: np.ndarray) -> Any:
    """An ONNX attribute from a column of node fields, without ``make_attribute``'s per-item checks."""
    from onnx import AttributeProto

    attr = AttributeProto(name=name)
    if values.dtype == object:
        attr.type = AttributeProto.STRINGS
        attr.strings.extend(values.tolist())
    elif values.dtype.kind == "f":
        attr.type = AttributeProto.FLOATS
        attr.floats.extend(values.tolist())
    else:
        attr.type = AttributeProto.INTS
        attr.ints.extend(values.tolist())
    return attr


def _category_chain(t: int, node: int, feature: int, members: list[int], left: int, right: int,
                    default_left: bool, next_id: int) -> list[tuple[Any, ...]]:
    """Node ``node`` of tree ``t``, a categorical split ("a category in the set goes right"), as equality
    tests that share the right child, the last one falling through to the left: codes outside the set
    (unknown, negative) go left as in XGBoost; a missing value takes the first test's true branch when
    XGBoost sends it right. The chain's rows of node fields, its head (the node itself) first; the other
    nodes take ids from ``next_id`` on."""
    ids = [node, *range(next_id, next_id + max(0, len(members) - 1))]
    values = [float(c) for c in members] or [float("nan")]  # an empty set: every category goes left
    return [(t, n, feature, _MODES[_EQ], value, right, ids[pos + 1] if pos + 1 < len(ids) else left,
             int(pos == 0 and not default_left)) for pos, (n, value) in enumerate(zip(ids, values, strict=True))]


def _categories(tree: dict[str, Any]) -> dict[int, list[int]]:
    """The category set of each categorical split node of ``tree``."""
    nodes, segments = tree.get("categories_nodes") or [], tree.get("categories_segments") or []
    sizes, values = tree.get("categories_sizes") or [], tree.get("categories") or []
    return {int(n): [int(c) for c in values[s:s + z]] for n, s, z in zip(nodes, segments, sizes, strict=True)}


def booster_to_onnx(booster: Any) -> bytes:
    """The ONNX model of ``booster`` (``Forest.to_onnx``); UnsupportedModel for what it cannot express."""
    return Forest(booster).to_onnx()


def boundary_rows(booster: Any, sample: np.ndarray | None, n: int = 300, seed: int = 0) -> np.ndarray:
    """Rows on and beside every split of ``booster`` (``Forest.boundary_rows``)."""
    return Forest(booster).boundary_rows(sample, n, seed)


class OnnxTrees:
    """An ONNX tree ensemble from ``booster_to_onnx`` in one ONNX Runtime session on one thread (a row is
    microseconds: a thread pool's hand-offs would cost more), answering as ``inplace_predict`` does."""

    def __init__(self, data: bytes, kind: str) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 4  # a model it refuses is reported by the caller, not logged here
        self.session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
        self.kind = kind

    def margin(self, X: np.ndarray) -> np.ndarray:
        """The raw scores (n, k), float32."""
        return self.session.run(None, {"X": np.ascontiguousarray(X, dtype=np.float32)})[0]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """float32 probabilities (n,) binary, (n, k) multiclass, or values (n,): XGBoost's own output."""
        m = self.margin(X)
        if self.kind == "binary":
            return sigmoid(m[:, 0])
        if self.kind == "multiclass":
            return softmax(m)
        return m[:, 0]


def sigmoid(m: np.ndarray) -> np.ndarray:
    """XGBoost's float32 sigmoid: ``1 / (exp(min(-x, 88.7)) + 1)``."""
    one = np.float32(1.0)
    return one / (_exp(np.minimum(-m, _SIGMOID_CAP)) + one)


def softmax(m: np.ndarray) -> np.ndarray:
    """XGBoost's softmax: float32 exponentials of the margins less the largest, summed in double precision
    from left to right, the sum rounded to float32 before it divides."""
    e = _exp(m - m.max(axis=1, keepdims=True))
    total = np.zeros(len(m), dtype=np.float64)
    for j in range(m.shape[1]):
        total += e[:, j]
    return e / total.astype(np.float32)[:, None]


def _exp(x: np.ndarray) -> np.ndarray:
    """float32 ``exp`` rounded from double precision: the C library's ``expf`` (what XGBoost calls) is
    within about half a unit of the exact value, NumPy's float32 loop within a few."""
    return np.exp(x.astype(np.float64)).astype(np.float32)
