"""requant.py — rewrite a GGUF model with its quantized 2-D weights in another
dtype (for bench/forward.sh): every tensor stored quantized is dequantized
to f32 and written as TYPE (F32, F16 or Q8_0); f32 tensors (norms) and all
metadata are copied. Uses the gguf package and numpy only.

  python requant.py IN.gguf OUT.gguf TYPE
"""
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V


def field_value(f):
    t = f.types[0]
    if t == V.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8", errors="surrogateescape")
    if t == V.ARRAY:
        st = f.types[-1]
        if st == V.STRING:
            return [bytes(f.parts[i]).decode("utf-8", errors="surrogateescape") for i in f.data]
        return [f.parts[i].tolist()[0] for i in f.data]
    return f.parts[f.data[0]].tolist()[0]


def main():
    src, dst, tname = sys.argv[1], sys.argv[2], sys.argv[3].upper()
    target = {"F32": Q.F32, "F16": Q.F16, "Q8_0": Q.Q8_0}[tname]
    r = gguf.GGUFReader(src)
    arch = field_value(r.fields["general.architecture"])
    w = gguf.GGUFWriter(dst, arch)
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        t = f.types[0]
        val = field_value(f)
        if t == V.ARRAY:
            w.add_key_value(name, val, V.ARRAY, sub_type=f.types[-1])
        else:
            w.add_key_value(name, val, t)
    for t in r.tensors:
        if t.tensor_type in (Q.F32,) or len(t.shape) < 2:
            w.add_tensor(t.name, np.array(t.data), raw_dtype=t.tensor_type)
            continue
        x = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        if target == Q.F32:
            w.add_tensor(t.name, x)
        elif target == Q.F16:
            w.add_tensor(t.name, x.astype(np.float16))
        else:
            w.add_tensor(t.name, gguf.quants.quantize(x, target), raw_dtype=target)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("wrote %s (%s)" % (dst, tname))


if __name__ == "__main__":
    main()
