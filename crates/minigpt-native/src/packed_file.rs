//! Packed-weights files: a [`NativeGpt`]'s weights written in the engine's packed layout, so
//! a later load maps the file and computes from it in place, with no conversion and no copy
//! (like llama.cpp's GGUF files), then moves the weights into huge pages in the background.
//!
//! Layout (little-endian): the magic `MGPTPAK1`; ten u64 header fields (n_head, n_embd,
//! n_positions, vocab, n_layer, n_inner, dtype code, exact GELU, LayerNorm epsilon's f32 bits,
//! the source identity's length) and the source identity's bytes (the caller's description of
//! the file the weights were packed from); then every tensor in the model's order, each at a
//! 4096-byte boundary: `wte` packed, `wpe`, per block `ln_1` (weight, bias), `c_attn`
//! (packed weight, bias), `attn.c_proj`, `ln_2`, `c_fc`, `mlp.c_proj`, and `ln_f`; then a
//! footer: `MGPTEND1`, the CRC-32 of every byte before the footer, and a stamp (u32 length,
//! bytes). The file's length is checked exactly.
//!
//! The stamp says when the content was last known to be whole: the writer's boot (see
//! `minigpt-model`'s cache). A file whose stamp matches is used as it is, with no pass over
//! its bytes; any other is checked against its CRC first (a crash can lose data written but
//! not yet on disk, and only a crash changes the boot).

use std::io::Write;
use std::sync::Arc;

use crate::dtype::DType;
use crate::mapped::MappedFile;
use crate::model::{Attention, Block, Config, Linear, Mlp, NativeGpt, Norm, Sizes};
use crate::pack::Packed;
use crate::settle::Settling;
use crate::source::Elements;

const MAGIC: &[u8; 8] = b"MGPTPAK1";
const END: &[u8; 8] = b"MGPTEND1";
/// Every tensor starts at a multiple of this (a page: each is mapped and released on its own).
const ALIGN: usize = 4096;

/// What a packed-weights file holds: the model's shape, the stored type, and an identity of
/// the weights it was packed from (the caller's choice, compared byte for byte).
#[derive(Debug, Clone, PartialEq)]
pub struct PackedHeader {
    /// The hyper-parameters.
    pub config: Config,
    /// The sizes.
    pub sizes: Sizes,
    /// The packed weights' storage type.
    pub dtype: DType,
    /// Identifies the source weights (e.g. a file's path, size and modification time).
    pub source: Vec<u8>,
}

impl PackedHeader {
    fn to_bytes(&self) -> Vec<u8> {
        let c = &self.config;
        let s = &self.sizes;
        let fields = [
            c.n_head as u64,
            c.n_embd as u64,
            c.n_positions as u64,
            s.vocab as u64,
            s.n_layer as u64,
            s.n_inner as u64,
            dtype_code(self.dtype),
            u64::from(c.exact_gelu),
            u64::from(c.layer_norm_epsilon.to_bits()),
            self.source.len() as u64,
        ];
        let mut out = MAGIC.to_vec();
        for f in fields {
            out.extend(f.to_le_bytes());
        }
        out.extend(&self.source);
        out
    }
}

fn dtype_code(d: DType) -> u64 {
    match d {
        DType::F32 => 0,
        DType::F16 => 1,
        DType::BF16 => 2,
    }
}

/// The tensors of a packed-weights file, in order, with their file offsets.
struct Cursor {
    pos: usize,
}

impl Cursor {
    /// The offset of the next tensor of `bytes` bytes.
    fn take(&mut self, bytes: usize) -> usize {
        let at = self.pos.next_multiple_of(ALIGN);
        self.pos = at + bytes;
        at
    }
}

/// Writes tensors at their offsets, zero-padding between them, and sums what it writes.
struct Writer<'a> {
    out: &'a mut dyn Write,
    cursor: Cursor,
    crc: crc32fast::Hasher,
}

impl Writer<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.crc.update(bytes);
        self.out.write_all(bytes)
    }

    /// One tensor, made of `parts` written back to back.
    fn put_parts(&mut self, parts: &[&[u8]]) -> std::io::Result<()> {
        let before = self.cursor.pos;
        let at = self.cursor.take(parts.iter().map(|p| p.len()).sum());
        self.write(&vec![0u8; at - before])?;
        parts.iter().try_for_each(|p| self.write(p))
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.put_parts(&[bytes])
    }

    fn vector(&mut self, v: &[f32]) -> std::io::Result<()> {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.put(&bytes)
    }

    fn linear(&mut self, l: &Linear) -> std::io::Result<()> {
        self.put_parts(&l.w.raw_bytes())?;
        self.vector(&l.b)
    }

    fn norm(&mut self, n: &Norm) -> std::io::Result<()> {
        self.vector(&n.g)?;
        self.vector(&n.b)
    }
}

/// Reads tensors at their offsets from a mapped file.
struct Reader<'a> {
    map: &'a Arc<MappedFile>,
    cursor: Cursor,
    dtype: DType,
}

impl Reader<'_> {
    fn range(&mut self, bytes: usize) -> Result<usize, String> {
        let at = self.cursor.take(bytes);
        if self.cursor.pos > self.map.bytes().len() {
            return Err("the file is shorter than its header says".into());
        }
        Ok(at)
    }

    fn vector(&mut self, len: usize) -> Result<Vec<f32>, String> {
        let at = self.range(len * 4)?;
        Ok(Elements::F32Le(&self.map.bytes()[at..at + len * 4]).to_vec())
    }

    fn packed(&mut self, k: usize, n: usize) -> Result<Packed, String> {
        let bytes = Packed::packed_len(k, n) * self.dtype.bytes();
        let at = self.range(bytes)?;
        Packed::mapped(k, n, self.dtype, self.map, at)
            .ok_or_else(|| "a packed tensor is misaligned".to_string())
    }

    fn linear(&mut self, k: usize, n: usize) -> Result<Linear, String> {
        Ok(Linear {
            w: self.packed(k, n)?,
            b: self.vector(n)?,
        })
    }

    fn norm(&mut self, width: usize) -> Result<Norm, String> {
        Ok(Norm {
            g: self.vector(width)?,
            b: self.vector(width)?,
        })
    }
}

impl NativeGpt {
    /// The sizes besides [`Config`].
    pub fn sizes(&self) -> Sizes {
        Sizes {
            vocab: self.wte.n,
            n_layer: self.h.len(),
            n_inner: self.h.first().map_or(0, |b| b.mlp.c_fc.w.n),
        }
    }

    /// Writes the packed weights as a packed-weights file whose source identity is `source`,
    /// stamped `stamp` (see the module documentation).
    pub fn write_packed(
        &self,
        source: &[u8],
        stamp: &[u8],
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        if cfg!(target_endian = "big") {
            return Err(std::io::Error::other(
                "packed-weights files are little-endian",
            ));
        }
        let header = PackedHeader {
            config: self.config,
            sizes: self.sizes(),
            dtype: self.dtype(),
            source: source.to_vec(),
        };
        let mut w = Writer {
            out,
            cursor: Cursor { pos: 0 },
            crc: crc32fast::Hasher::new(),
        };
        w.put(&header.to_bytes())?;
        w.put_parts(&self.wte.raw_bytes())?;
        w.vector(&self.wpe)?;
        for b in &self.h {
            w.norm(&b.ln_1)?;
            w.linear(&b.attn.c_attn)?;
            w.linear(&b.attn.c_proj)?;
            w.norm(&b.ln_2)?;
            w.linear(&b.mlp.c_fc)?;
            w.linear(&b.mlp.c_proj)?;
        }
        w.norm(&self.ln_f)?;
        let crc = w.crc.clone().finalize();
        w.out.write_all(&footer(crc, stamp))?;
        w.out.flush()
    }

    /// The model in the packed-weights file `map`, which must hold exactly `want` (shape,
    /// type and source identity) and be whole: trusted as it is when stamped `stamp`, else
    /// checked against its CRC. Its packed matrices are read in place from the map, and move
    /// into huge pages in the background after the first token's logits. `Err` says why the
    /// file does not fit (the caller packs from the source again).
    pub fn from_packed(
        map: Arc<MappedFile>,
        want: &PackedHeader,
        stamp: &[u8],
    ) -> Result<Opened, String> {
        if cfg!(target_endian = "big") {
            return Err("packed-weights files are little-endian".into());
        }
        let head = want.to_bytes();
        if map.bytes().get(..head.len()) != Some(&head[..]) {
            return Err("made for other weights, another shape or another type".into());
        }
        let (
            config,
            Sizes {
                vocab,
                n_layer,
                n_inner,
            },
        ) = (want.config, want.sizes);
        let c = config.n_embd;
        let mut r = Reader {
            map: &map,
            cursor: Cursor { pos: head.len() },
            dtype: want.dtype,
        };
        let wte = r.packed(c, vocab)?;
        let wpe = r.vector(config.n_positions * c)?;
        let mut h = Vec::with_capacity(n_layer);
        for _ in 0..n_layer {
            h.push(Block {
                ln_1: r.norm(c)?,
                attn: Attention {
                    c_attn: r.linear(c, 3 * c)?,
                    c_proj: r.linear(c, c)?,
                },
                ln_2: r.norm(c)?,
                mlp: Mlp {
                    c_fc: r.linear(c, n_inner)?,
                    c_proj: r.linear(n_inner, c)?,
                },
            });
        }
        let ln_f = r.norm(c)?;
        let body = r.cursor.pos;
        let bytes = map.bytes();
        let tail = bytes.get(body..).unwrap_or_default();
        let (crc, stamped) = read_footer(tail)?;
        let checked = stamped != stamp;
        if checked && crc32fast::hash(&bytes[..body]) != crc {
            return Err("its content does not match its checksum (a crash cut it short)".into());
        }
        let model = Self {
            config,
            wte,
            wpe,
            h,
            ln_f,
            settling: Settling::default(),
        };
        Ok(Opened {
            model,
            checked,
            stamp_at: bytes.len() - stamped.len(),
        })
    }
}

/// A model read from a packed-weights file, and how its content was trusted.
#[derive(Debug)]
pub struct Opened {
    /// The model.
    pub model: NativeGpt,
    /// The stamp differed, so the content was checked against the CRC (and found whole):
    /// the caller may write its stamp at `stamp_at` so later loads skip the check.
    pub checked: bool,
    /// The file offset of the stamp's bytes.
    pub stamp_at: usize,
}

/// The footer for content summing to `crc`, stamped `stamp`.
fn footer(crc: u32, stamp: &[u8]) -> Vec<u8> {
    let mut out = END.to_vec();
    out.extend(crc.to_le_bytes());
    out.extend((stamp.len() as u32).to_le_bytes());
    out.extend(stamp);
    out
}

/// The CRC and the stamp of a footer that fills `tail` exactly.
fn read_footer(tail: &[u8]) -> Result<(u32, &[u8]), String> {
    let short = || "the file is shorter than its header says".to_string();
    if tail.len() < 16 {
        return Err(short());
    }
    if &tail[..8] != END {
        return Err("the file's footer is missing (a crash cut it short)".into());
    }
    let crc = u32::from_le_bytes(tail[8..12].try_into().expect("4 bytes"));
    let len = u32::from_le_bytes(tail[12..16].try_into().expect("4 bytes")) as usize;
    match (tail.len() - 16).cmp(&len) {
        std::cmp::Ordering::Less => Err(short()),
        std::cmp::Ordering::Greater => Err("the file is longer than its header says".into()),
        std::cmp::Ordering::Equal => Ok((crc, &tail[16..])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values as values;
    use crate::{SeqCache, WeightSource};

    /// A GPT-2 of random weights, as tensors by name.
    struct Random(std::collections::HashMap<String, Vec<f32>>);

    impl WeightSource for Random {
        fn tensor(&mut self, name: &str) -> Elements<'_> {
            Elements::F32(&self.0[name])
        }
    }

    fn random(c: usize, vocab: usize, n_layer: usize, n_pos: usize) -> Random {
        let mut t = std::collections::HashMap::new();
        let mut seed = 1;
        let mut put = |name: String, len: usize| {
            seed += 1;
            t.insert(name, values(len, seed));
        };
        put("wte.weight".into(), vocab * c);
        put("wpe.weight".into(), n_pos * c);
        for i in 0..n_layer {
            for (name, len) in [
                ("ln_1.weight", c),
                ("ln_1.bias", c),
                ("attn.c_attn.weight", c * 3 * c),
                ("attn.c_attn.bias", 3 * c),
                ("attn.c_proj.weight", c * c),
                ("attn.c_proj.bias", c),
                ("ln_2.weight", c),
                ("ln_2.bias", c),
                ("mlp.c_fc.weight", c * 4 * c),
                ("mlp.c_fc.bias", 4 * c),
                ("mlp.c_proj.weight", 4 * c * c),
                ("mlp.c_proj.bias", c),
            ] {
                put(format!("h.{i}.{name}"), len);
            }
        }
        put("ln_f.weight".into(), c);
        put("ln_f.bias".into(), c);
        Random(t)
    }

    fn logits(m: &NativeGpt, tokens: &[u32]) -> Vec<f32> {
        let mut cache: SeqCache = m.new_cache();
        let hidden = m.forward(&mut [(&mut cache, tokens)], crate::Want::Last);
        m.logits(&hidden)
    }

    /// A model written and mapped back computes bit-identical logits, from the map and after
    /// its weights moved into memory; a file for other weights or another type, a cut-off
    /// file, or (under another stamp) a file whose bytes changed is refused with a reason.
    #[test]
    fn a_packed_file_round_trips_bit_identically() {
        let dir = std::env::temp_dir().join(format!("minigpt-packed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = Config {
            n_head: 2,
            n_embd: 64,
            n_positions: 40,
            layer_norm_epsilon: 1e-5,
            exact_gelu: false,
        };
        let sizes = Sizes {
            vocab: 101,
            n_layer: 2,
            n_inner: 256,
        };
        let tokens = [3u32, 14, 15, 92, 65];
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            let built = NativeGpt::from_source(config, sizes, dtype, &mut random(64, 101, 2, 40));
            assert_eq!(built.sizes(), sizes);
            let path = dir.join(format!("{dtype:?}.mgpk"));
            let mut file = std::fs::File::create(&path).unwrap();
            built
                .write_packed(b"source-1", b"boot-a", &mut file)
                .unwrap();
            drop(file);
            let want = PackedHeader {
                config,
                sizes,
                dtype,
                source: b"source-1".to_vec(),
            };
            let open = |path: &std::path::Path, want: &PackedHeader, stamp: &[u8]| {
                let map = Arc::new(MappedFile::open(path).unwrap());
                NativeGpt::from_packed(map, want, stamp)
            };
            let opened = open(&path, &want, b"boot-a").unwrap();
            assert!(!opened.checked, "the same stamp is trusted");
            let mapped = opened.model;
            assert!(mapped.is_mapped() && !built.is_mapped());
            let expected = logits(&built, &tokens);
            assert_eq!(logits(&mapped, &tokens), expected, "{dtype:?} from the map");
            mapped.settle();
            assert!(!mapped.is_mapped(), "{dtype:?} settled");
            assert_eq!(logits(&mapped, &tokens), expected, "{dtype:?} settled");

            // Another stamp: the content is checked, and where the stamp is.
            let bytes = std::fs::read(&path).unwrap();
            let opened = open(&path, &want, b"boot-b").unwrap();
            assert!(opened.checked);
            assert_eq!(&bytes[opened.stamp_at..], b"boot-a");
            assert_eq!(logits(&opened.model, &tokens), expected);

            // A changed byte (the zeros a crash can leave) fails the check under another
            // stamp; under the writer's stamp the file is trusted without a pass over it.
            let bad = dir.join("bad.mgpk");
            let mut zeroed = bytes.clone();
            let mid = bytes.len() / 2;
            zeroed[mid..mid + 4096].fill(0);
            assert_ne!(zeroed, bytes);
            std::fs::write(&bad, &zeroed).unwrap();
            let err = open(&bad, &want, b"boot-b").unwrap_err();
            assert!(err.contains("checksum"), "{err}");
            assert!(!open(&bad, &want, b"boot-a").unwrap().checked);

            let other = PackedHeader {
                source: b"source-2".to_vec(),
                ..want.clone()
            };
            assert!(open(&path, &other, b"boot-a").is_err());
            let f16 = DType::F16;
            let other = PackedHeader {
                dtype: if dtype == f16 { DType::F32 } else { f16 },
                ..want.clone()
            };
            assert!(open(&path, &other, b"boot-a").is_err());
            for cut in [1, 7, 30, 5000] {
                std::fs::write(&bad, &bytes[..bytes.len() - cut]).unwrap();
                let err = open(&bad, &want, b"boot-a").unwrap_err();
                assert!(
                    err.contains("shorter") || err.contains("footer"),
                    "{cut}: {err}"
                );
            }
            let mut long = bytes.clone();
            long.push(0);
            std::fs::write(&bad, &long).unwrap();
            let err = open(&bad, &want, b"boot-a").unwrap_err();
            assert!(err.contains("longer"), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
