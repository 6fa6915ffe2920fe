"""Model builders for the Python baselines of bench/run: ONNX graphs (ONNX Runtime,
MNN, tract) and .tflite flatbuffers written directly with LiteRT's generated schema
(no converter). Every model computes a case's layer with the case's exact weights.

Layouts follow bench/src/reference.rs: FC x [N, K] -> y [N, M] (Gemm, transB=1);
conv NCHW (ONNX) or NHWC (LiteRT); GRU step as a graph of Gemm/FC, Split, Sigmoid,
Tanh, Mul, Add, Sub with PyTorch gate order r, z, n."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


def onnx_model(meta, t):
    """The ONNX model of a case; `t` maps tensor roles to numpy arrays."""
    layer = meta["layer"]
    kind = layer["kind"]
    inits, nodes = [], []
    if kind == "fc":
        n, k, m = layer["n"], layer["k"], layer["m"]
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, k])]
        inits.append(numpy_helper.from_array(t["w"], "w"))
        nodes.append(helper.make_node("Gemm", ["x", "w"], ["y"], transB=1))
        out = [n, m]
    elif kind == "conv":
        c, o, h, w = layer["c"], layer["o"], layer["h"], layer["w"]
        p, s = layer["pad"], layer["stride"]
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, h, w])]
        inits.append(numpy_helper.from_array(t["w"], "w"))
        nodes.append(helper.make_node(
            "Conv", ["x", "w"], ["y"], kernel_shape=[layer["kh"], layer["kw"]],
            pads=[p, p, p, p], strides=[s, s]))
        oh = (h + 2 * p - layer["kh"]) // s + 1
        ow = (w + 2 * p - layer["kw"]) // s + 1
        out = [1, o, oh, ow]
    elif kind == "gru":
        hid, inp = layer["hidden"], layer["input"]
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, inp]),
                  helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, hid])]
        for r in ("w_ih", "w_hh", "b_ih", "b_hh"):
            inits.append(numpy_helper.from_array(t[r], r))
        inits.append(numpy_helper.from_array(np.array([hid, hid, hid], np.int64), "split"))
        nodes += [
            helper.make_node("Gemm", ["x", "w_ih", "b_ih"], ["gi"], transB=1),
            helper.make_node("Gemm", ["h", "w_hh", "b_hh"], ["gh"], transB=1),
            helper.make_node("Split", ["gi", "split"], ["i_r", "i_z", "i_n"], axis=1),
            helper.make_node("Split", ["gh", "split"], ["h_r", "h_z", "h_n"], axis=1),
            helper.make_node("Add", ["i_r", "h_r"], ["a_r"]),
            helper.make_node("Sigmoid", ["a_r"], ["r"]),
            helper.make_node("Add", ["i_z", "h_z"], ["a_z"]),
            helper.make_node("Sigmoid", ["a_z"], ["z"]),
            helper.make_node("Mul", ["r", "h_n"], ["rh"]),
            helper.make_node("Add", ["i_n", "rh"], ["a_n"]),
            helper.make_node("Tanh", ["a_n"], ["nn"]),
            helper.make_node("Sub", ["h", "nn"], ["d"]),
            helper.make_node("Mul", ["z", "d"], ["zd"]),
            helper.make_node("Add", ["nn", "zd"], ["y"]),
        ]
        out = [1, hid]
    else:
        raise ValueError(f"unknown layer kind {kind}")
    graph = helper.make_graph(
        nodes, meta["case"]["id"], inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="grim-bench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------- LiteRT (.tflite)

def _schema():
    from ai_edge_litert import schema_py_generated as s
    return s


class _TfliteBuilder:
    """Collects tensors, buffers and operators of one subgraph."""

    def __init__(self):
        s = _schema()
        self.s = s
        self.buffers = [s.BufferT()]  # buffer 0: empty, as the format requires
        self.tensors = []
        self.ops = []
        self.codes = []

    def tensor(self, name, shape, data=None, dtype=None, sparsity=None):
        s = self.s
        tt = s.TensorT()
        tt.name = name
        tt.shape = list(shape)
        tt.type = dtype if dtype is not None else s.TensorType.FLOAT32
        if data is None:
            tt.buffer = 0
        else:
            b = s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
            self.buffers.append(b)
            tt.buffer = len(self.buffers) - 1
        tt.sparsity = sparsity
        self.tensors.append(tt)
        return len(self.tensors) - 1

    def op(self, code, inputs, outputs, opt_type=0, opt=None):
        s = self.s
        if code not in self.codes:
            self.codes.append(code)
        o = s.OperatorT()
        o.opcodeIndex = self.codes.index(code)
        o.inputs = list(inputs)
        o.outputs = list(outputs)
        o.builtinOptionsType = opt_type
        o.builtinOptions = opt
        self.ops.append(o)

    def fc(self, x, w_idx, b_idx, out):
        s = self.s
        opt = s.FullyConnectedOptionsT()
        opt.fusedActivationFunction = s.ActivationFunctionType.NONE
        self.op(s.BuiltinOperator.FULLY_CONNECTED, [x, w_idx, b_idx], [out],
                s.BuiltinOptions.FullyConnectedOptions, opt)

    def finish(self, inputs, outputs):
        import flatbuffers
        s = self.s
        sg = s.SubGraphT()
        sg.tensors, sg.inputs, sg.outputs, sg.operators = self.tensors, inputs, outputs, self.ops
        sg.name = "main"
        m = s.ModelT()
        m.version = 3
        m.description = "grim-bench"
        m.subgraphs = [sg]
        m.buffers = self.buffers
        codes = []
        for c in self.codes:
            oc = s.OperatorCodeT()
            oc.builtinCode = c
            oc.deprecatedBuiltinCode = min(c, 127)
            oc.version = 1
            codes.append(oc)
        m.operatorCodes = codes
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _dim(s, fmt, dense_size=0, segments=None, indices=None):
    d = s.DimensionMetadataT()
    d.format = fmt
    d.denseSize = dense_size
    if segments is not None:
        seg = s.Int32VectorT()
        seg.values = [int(v) for v in segments]
        idx = s.Int32VectorT()
        idx.values = [int(v) for v in indices]
        d.arraySegmentsType = s.SparseIndexVector.Int32Vector
        d.arraySegments = seg
        d.arrayIndicesType = s.SparseIndexVector.Int32Vector
        d.arrayIndices = idx
    return d


def sparse_weight(s, w, fmt):
    """(values, SparsityParametersT, stored values) of a 2-D weight [M, K] in LiteRT's
    block-sparse 1x4 format (`fmt == "1x4"`, the optimized kernel) or CSR."""
    m, k = w.shape
    sp = s.SparsityParametersT()
    if fmt == "1x4":
        if k % 4:
            raise ValueError("1x4 blocks need K divisible by 4")
        blocks = w.reshape(m, k // 4, 4)
        keep = np.any(blocks != 0, axis=2)
        seg = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
        idx = np.nonzero(keep)[1]
        vals = blocks[keep].reshape(-1).astype(np.float32)
        sp.traversalOrder = [0, 1, 2]
        sp.blockMap = [1]
        sp.dimMetadata = [_dim(s, s.DimensionType.DENSE, m),
                          _dim(s, s.DimensionType.SPARSE_CSR, 0, seg, idx),
                          _dim(s, s.DimensionType.DENSE, 4)]
    else:
        keep = w != 0
        seg = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
        idx = np.nonzero(keep)[1]
        vals = w[keep].astype(np.float32)
        sp.traversalOrder = [0, 1]
        sp.dimMetadata = [_dim(s, s.DimensionType.DENSE, m),
                          _dim(s, s.DimensionType.SPARSE_CSR, 0, seg, idx)]
    return vals, sp, vals.size


def tflite_model(meta, t, sparse=None):
    """The .tflite bytes of a case. `sparse` is None (dense), "1x4" or "csr" (FC
    weights only: LiteRT has no sparse conv kernel). Returns (bytes, note)."""
    s = _schema()
    B = _TfliteBuilder()
    layer = meta["layer"]
    kind = layer["kind"]
    note = ""

    def weight(name, w):
        nonlocal note
        if sparse is None:
            return B.tensor(name, w.shape, w)
        vals, sp, stored = sparse_weight(s, w, sparse)
        note += f"{name}: {stored} stored values ({stored / w.size:.1%} of dense); "
        return B.tensor(name, w.shape, vals, sparsity=sp)

    if kind == "fc":
        n, k, m = layer["n"], layer["k"], layer["m"]
        x = B.tensor("x", [n, k])
        w = weight("w", t["w"])
        b = B.tensor("b", [m], np.zeros(m, np.float32))
        y = B.tensor("y", [n, m])
        B.fc(x, w, b, y)
        return B.finish([x], [y]), note
    if kind == "conv":
        if sparse is not None:
            raise ValueError("LiteRT has no sparse conv kernel")
        c, o, h, w_ = layer["c"], layer["o"], layer["h"], layer["w"]
        kh, kw, p, st = layer["kh"], layer["kw"], layer["pad"], layer["stride"]
        if p not in (0, (kh - 1) // 2) or st != 1:
            raise ValueError("only VALID or SAME stride-1 convolutions map to LiteRT")
        x = B.tensor("x", [1, h, w_, c])
        wt = B.tensor("w", [o, kh, kw, c], np.ascontiguousarray(t["w"].transpose(0, 2, 3, 1)))
        b = B.tensor("b", [o], np.zeros(o, np.float32))
        oh = (h + 2 * p - kh) // st + 1
        ow = (w_ + 2 * p - kw) // st + 1
        y = B.tensor("y", [1, oh, ow, o])
        opt = s.Conv2DOptionsT()
        opt.padding = s.Padding.SAME if p > 0 else s.Padding.VALID
        opt.strideW = opt.strideH = 1
        opt.dilationWFactor = opt.dilationHFactor = 1
        opt.fusedActivationFunction = s.ActivationFunctionType.NONE
        B.op(s.BuiltinOperator.CONV_2D, [x, wt, b], [y], s.BuiltinOptions.Conv2DOptions, opt)
        return B.finish([x], [y]), note
    if kind == "gru":
        hid, inp = layer["hidden"], layer["input"]
        x = B.tensor("x", [1, inp])
        h = B.tensor("h", [1, hid])
        wi = weight("w_ih", t["w_ih"])
        wh = weight("w_hh", t["w_hh"])
        bi = B.tensor("b_ih", [3 * hid], t["b_ih"])
        bh = B.tensor("b_hh", [3 * hid], t["b_hh"])
        gi = B.tensor("gi", [1, 3 * hid])
        gh = B.tensor("gh", [1, 3 * hid])
        B.fc(x, wi, bi, gi)
        B.fc(h, wh, bh, gh)
        axis = B.tensor("axis", [], np.array(1, np.int32), dtype=s.TensorType.INT32)
        parts = {}
        for src, pre in ((gi, "i"), (gh, "h")):
            outs = [B.tensor(f"{pre}_{g}", [1, hid]) for g in "rzn"]
            opt = s.SplitOptionsT()
            opt.numSplits = 3
            B.op(s.BuiltinOperator.SPLIT, [axis, src], outs, s.BuiltinOptions.SplitOptions, opt)
            for g, o in zip("rzn", outs):
                parts[pre + g] = o

        def bin_op(code, opt_type, opt_cls, a, b_, name):
            out = B.tensor(name, [1, hid])
            o = opt_cls()
            B.op(code, [a, b_], [out], opt_type, o)
            return out

        def un_op(code, a, name):
            out = B.tensor(name, [1, hid])
            B.op(code, [a], [out])
            return out

        BO, OPT = s.BuiltinOperator, s.BuiltinOptions
        add = lambda a, b_, n_: bin_op(BO.ADD, OPT.AddOptions, s.AddOptionsT, a, b_, n_)
        mul = lambda a, b_, n_: bin_op(BO.MUL, OPT.MulOptions, s.MulOptionsT, a, b_, n_)
        sub = lambda a, b_, n_: bin_op(BO.SUB, OPT.SubOptions, s.SubOptionsT, a, b_, n_)
        r = un_op(BO.LOGISTIC, add(parts["ir"], parts["hr"], "a_r"), "r")
        z = un_op(BO.LOGISTIC, add(parts["iz"], parts["hz"], "a_z"), "z")
        nn = un_op(BO.TANH, add(parts["in"], mul(r, parts["hn"], "rh"), "a_n"), "nn")
        y = add(nn, mul(z, sub(h, nn, "d"), "zd"), "y")
        return B.finish([x, h], [y]), note
    raise ValueError(f"unknown layer kind {kind}")
