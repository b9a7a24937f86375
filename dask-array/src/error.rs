//! The error type of dask-array.

/// `Result` with dask-array's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Formats a shape the way NumPy prints it: `(3, 4)`, `(5,)`, `()`.
pub(crate) fn fmt_shape(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_owned(),
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Everything that can go wrong while building or computing an array.
///
/// Shape, chunk and axis errors are raised when the expression is built, never at
/// compute time; each message names the offending values and how to fix them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from the task graph or a scheduler (including failing tasks).
    #[error(transparent)]
    Core(#[from] dask_core::Error),
    /// Explicit chunks along an axis do not add up to the array's length there.
    #[error("chunks {chunks:?} along axis {axis} sum to {sum}, but the array has length {dim} there: give chunks that add up to {dim}")]
    ChunksDoNotSumToShape {
        /// The axis.
        axis: usize,
        /// The chunk sizes given.
        chunks: Vec<usize>,
        /// Their sum.
        sum: usize,
        /// The array's length along the axis.
        dim: usize,
    },
    /// A chunk size of zero along an axis of nonzero length.
    #[error("chunk size 0 along axis {axis} (length {dim}): chunk sizes must be at least 1")]
    ZeroChunkSize {
        /// The axis.
        axis: usize,
        /// The array's length along the axis.
        dim: usize,
    },
    /// Chunks given for a different number of axes than the array has.
    #[error("chunks given for {found} axes, but the array has {expected} (shape {}): give one chunk size (or list) per axis", fmt_shape(.shape))]
    ChunksNdim {
        /// The array's number of axes.
        expected: usize,
        /// The number of axes the chunks describe.
        found: usize,
        /// The array's shape.
        shape: Vec<usize>,
    },
    /// An axis index beyond the array's dimensions.
    #[error("axis {axis} is out of range for an array of {ndim} dimensions (shape {}): use an axis in 0..{ndim}", fmt_shape(.shape))]
    AxisOutOfRange {
        /// The axis asked for.
        axis: usize,
        /// The number of axes.
        ndim: usize,
        /// The array's shape.
        shape: Vec<usize>,
    },
    /// Two shapes that NumPy's broadcasting rules cannot combine.
    #[error("cannot broadcast shapes {} and {}: aligned from the right, each pair of lengths must be equal or one of them 1; reshape or slice one operand", fmt_shape(.left), fmt_shape(.right))]
    Broadcast {
        /// The left operand's shape.
        left: Vec<usize>,
        /// The right operand's shape.
        right: Vec<usize>,
    },
    /// Operands whose shapes must agree (except where the operation allows) do not.
    #[error("{op}: shapes {} and {} do not agree{}: {hint}", fmt_shape(.left), fmt_shape(.right), .axis.map(|a| format!(" outside axis {a}")).unwrap_or_default())]
    ShapeMismatch {
        /// The operation.
        op: &'static str,
        /// The first shape.
        left: Vec<usize>,
        /// The other shape.
        right: Vec<usize>,
        /// The axis along which the shapes may differ, if any.
        axis: Option<usize>,
        /// How to fix it.
        hint: &'static str,
    },
    /// `matmul`/`dot` of arrays whose inner dimensions differ or that are not 2-D.
    #[error("matmul: cannot multiply shapes {} and {}: {hint}", fmt_shape(.left), fmt_shape(.right))]
    MatmulShapes {
        /// The left operand's shape.
        left: Vec<usize>,
        /// The right operand's shape.
        right: Vec<usize>,
        /// What is wrong and how to fix it.
        hint: &'static str,
    },
    /// A reduction with no identity (`min`, `max`, `argmin`, `argmax`) over zero elements.
    #[error("{op}: the reduction covers zero elements (shape {}), and {op} of nothing is undefined: reduce over a non-empty axis", fmt_shape(.shape))]
    EmptyReduction {
        /// The reduction.
        op: &'static str,
        /// The array's shape.
        shape: Vec<usize>,
    },
    /// A parameter outside its valid range (a zero step, `split_every` below 2, ...).
    #[error("{op}: invalid {param} = {value}: {hint}")]
    InvalidArgument {
        /// The operation.
        op: &'static str,
        /// The parameter.
        param: &'static str,
        /// The value given, formatted.
        value: String,
        /// What would be valid.
        hint: &'static str,
    },
    /// An operation on a list of arrays was given none.
    #[error("{op}: needs at least one array, got none")]
    NoArrays {
        /// The operation.
        op: &'static str,
    },
    /// A slice reaching beyond an axis.
    #[error("slice {start}..{end} is out of bounds for axis {axis} of length {dim}: use indices in -{dim}..={dim}")]
    SliceOutOfBounds {
        /// The axis.
        axis: usize,
        /// The slice's start, as given.
        start: isize,
        /// The slice's end, as given (the axis length when open).
        end: isize,
        /// The axis length.
        dim: usize,
    },
    /// A scalar was asked of an array that is not 0-dimensional.
    #[error("expected a 0-dimensional array (a full reduction), found shape {}: reduce over all axes (axis None) or compute the array", fmt_shape(.shape))]
    NotScalar {
        /// The array's shape.
        shape: Vec<usize>,
    },
    /// An index beyond the end of an axis (integer-array indexing).
    #[error(
        "index {index} is out of bounds for axis {axis} of length {dim}: use indices below {dim}"
    )]
    IndexOutOfBounds {
        /// The axis.
        axis: usize,
        /// The offending index.
        index: usize,
        /// The axis length.
        dim: usize,
    },
    /// A boolean mask whose length differs from the axis it selects on.
    #[error("boolean mask of length {found} does not match axis {axis} of length {expected}: give one bool per element of the axis")]
    MaskLength {
        /// The axis.
        axis: usize,
        /// The axis length.
        expected: usize,
        /// The mask's length.
        found: usize,
    },
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`"reading"`, `"writing"`, `"creating directory"`).
        action: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not what dask-array wrote (a bad `.npy` header, another dtype,
    /// a malformed `info` file).
    #[error("{path}: {message}")]
    BadFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        message: String,
    },
}
