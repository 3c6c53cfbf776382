//! [`WeightSource`]: where the engine reads GPT-2's tensors from while it packs them, one at a
//! time (a memory-mapped safetensors file, or values already in memory), and [`Elements`]:
//! one tensor's values as the source stores them.

/// One tensor's values, row-major, as stored: f32 values, or the little-endian bytes of f32,
/// f16 or bf16 values (a file's, read in place).
#[derive(Debug, Clone, Copy)]
pub enum Elements<'a> {
    /// f32 values.
    F32(&'a [f32]),
    /// Little-endian f32 bytes.
    F32Le(&'a [u8]),
    /// Little-endian IEEE f16 bytes.
    F16Le(&'a [u8]),
    /// Little-endian bfloat16 bytes.
    BF16Le(&'a [u8]),
}

impl Elements<'_> {
    /// Values held.
    pub fn len(&self) -> usize {
        match self {
            Self::F32(v) => v.len(),
            Self::F32Le(b) => b.len() / 4,
            Self::F16Le(b) | Self::BF16Le(b) => b.len() / 2,
        }
    }

    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` as f32 (f16 and bf16 widen exactly).
    #[inline]
    pub fn get(&self, i: usize) -> f32 {
        match self {
            Self::F32(v) => v[i],
            Self::F32Le(b) => {
                f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
            }
            Self::F16Le(b) => half::f16::from_le_bytes([b[2 * i], b[2 * i + 1]]).to_f32(),
            Self::BF16Le(b) => half::bf16::from_le_bytes([b[2 * i], b[2 * i + 1]]).to_f32(),
        }
    }

    /// Values `start..start + out.len()` into `out`, as f32 (one loop per stored type).
    pub fn read(&self, start: usize, out: &mut [f32]) {
        let end = start + out.len();
        match self {
            Self::F32(v) => out.copy_from_slice(&v[start..end]),
            Self::F32Le(b) => {
                for (o, c) in out.iter_mut().zip(b[4 * start..4 * end].chunks_exact(4)) {
                    *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            Self::F16Le(b) => {
                for (o, c) in out.iter_mut().zip(b[2 * start..2 * end].chunks_exact(2)) {
                    *o = half::f16::from_le_bytes([c[0], c[1]]).to_f32();
                }
            }
            Self::BF16Le(b) => {
                for (o, c) in out.iter_mut().zip(b[2 * start..2 * end].chunks_exact(2)) {
                    *o = half::bf16::from_le_bytes([c[0], c[1]]).to_f32();
                }
            }
        }
    }

    /// All values as f32.
    pub fn to_vec(&self) -> Vec<f32> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }
}

/// The tensors of a GPT-2 checkpoint, by their Hugging Face names without the `transformer.`
/// prefix (`wte.weight`, `h.0.attn.c_attn.bias`, …, `ln_f.weight`). The engine asks for each
/// tensor once, the largest (`wte.weight`) first, and calls [`WeightSource::done`] as soon
/// as it has packed it, so a source can give its memory back before the next one.
pub trait WeightSource {
    /// The named tensor's values, row-major.
    ///
    /// # Panics
    /// A source may panic on a name it lacks: callers check the checkpoint first.
    fn tensor(&mut self, name: &str) -> Elements<'_>;

    /// The engine has packed (or copied) `name` and will not read it again.
    fn done(&mut self, _name: &str) {}
}
