/// Why a spatial op cannot run on an input, naming the dimension.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// The (dilated) kernel does not fit in the padded input along `dimension`.
    #[error(
        "kernel {kernel} (dilated extent {extent}) is larger than the padded {dimension} {padded} (input {input} + 2·padding {padding})"
    )]
    KernelLargerThanInput {
        /// `"height"` or `"width"`.
        dimension: &'static str,
        /// The kernel size along it.
        kernel: usize,
        /// `dilation · (kernel − 1) + 1`.
        extent: usize,
        /// The input size along it.
        input: usize,
        /// The padding on each side.
        padding: usize,
        /// `input + 2·padding`.
        padded: usize,
    },
    /// A channel count is not divisible by the number of groups.
    #[error("{what} {channels} is not divisible by groups {groups}")]
    Groups {
        /// `"input channels"` or `"output channels"`.
        what: &'static str,
        /// The channel count.
        channels: usize,
        /// The number of groups.
        groups: usize,
    },
    /// A transposed convolution's padding removes its whole output along `dimension`.
    #[error("padding 2·{padding} removes the whole transposed-convolution output of {size} along the {dimension}")]
    EmptyOutput {
        /// `"height"` or `"width"`.
        dimension: &'static str,
        /// The output size before padding is removed.
        size: usize,
        /// The padding on each side.
        padding: usize,
    },
    /// A pooling padding larger than half the kernel: some windows would see only padding.
    #[error("padding {padding} is more than half the kernel {kernel} along the {dimension}")]
    PaddingOverHalfKernel {
        /// `"height"` or `"width"`.
        dimension: &'static str,
        /// The padding.
        padding: usize,
        /// The kernel size.
        kernel: usize,
    },
    /// A setting that must be at least 1 is 0.
    #[error("`{setting}` must be at least 1")]
    Zero {
        /// The setting's name.
        setting: &'static str,
    },
}

/// Kernel size, stride, padding, dilation and groups of a 2-D convolution (PyTorch's meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Kernel height and width.
    pub kernel: (usize, usize),
    /// Step between output positions.
    pub stride: (usize, usize),
    /// Zeros added on each side.
    pub padding: (usize, usize),
    /// Spacing between kernel taps.
    pub dilation: (usize, usize),
    /// Channel groups: input and output channels split into this many independent convolutions.
    pub groups: usize,
}

impl Conv2dGeometry {
    /// A square kernel with stride 1, no padding, no dilation, one group.
    pub fn square(kernel: usize) -> Self {
        Self {
            kernel: (kernel, kernel),
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
    /// Sets the stride on both axes.
    pub fn with_stride(self, stride: usize) -> Self {
        Self {
            stride: (stride, stride),
            ..self
        }
    }
    /// Sets the padding on both axes.
    pub fn with_padding(self, padding: usize) -> Self {
        Self {
            padding: (padding, padding),
            ..self
        }
    }
    /// Sets the dilation on both axes.
    pub fn with_dilation(self, dilation: usize) -> Self {
        Self {
            dilation: (dilation, dilation),
            ..self
        }
    }
    /// Sets the number of groups.
    pub fn with_groups(self, groups: usize) -> Self {
        Self { groups, ..self }
    }

    /// The output height and width for an input of `height × width`:
    /// `(in + 2p − d(k − 1) − 1)/s + 1` on each axis.
    pub fn output_size(&self, height: usize, width: usize) -> Result<(usize, usize), ShapeError> {
        for (setting, value) in [
            ("kernel", self.kernel.0.min(self.kernel.1)),
            ("stride", self.stride.0.min(self.stride.1)),
            ("dilation", self.dilation.0.min(self.dilation.1)),
            ("groups", self.groups),
        ] {
            if value == 0 {
                return Err(ShapeError::Zero { setting });
            }
        }
        let axis = |dimension, input: usize, kernel: usize, stride: usize, padding: usize, dilation: usize| {
            let extent = dilation * (kernel - 1) + 1;
            let padded = input + 2 * padding;
            if extent > padded {
                Err(ShapeError::KernelLargerThanInput {
                    dimension,
                    kernel,
                    extent,
                    input,
                    padding,
                    padded,
                })
            } else {
                Ok((padded - extent) / stride + 1)
            }
        };
        Ok((
            axis("height", height, self.kernel.0, self.stride.0, self.padding.0, self.dilation.0)?,
            axis("width", width, self.kernel.1, self.stride.1, self.padding.1, self.dilation.1)?,
        ))
    }

    pub(crate) fn check_groups(&self, in_channels: usize, out_channels: usize) -> Result<(), ShapeError> {
        for (what, channels) in [("input channels", in_channels), ("output channels", out_channels)] {
            if channels % self.groups != 0 {
                return Err(ShapeError::Groups {
                    what,
                    channels,
                    groups: self.groups,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_size_follows_pytorch() {
        assert_eq!(Conv2dGeometry::square(5).with_padding(2).output_size(28, 28), Ok((28, 28)));
        assert_eq!(
            Conv2dGeometry::square(3).with_stride(2).with_padding(1).output_size(7, 6),
            Ok((4, 3))
        );
        assert_eq!(Conv2dGeometry::square(3).with_dilation(2).output_size(8, 7), Ok((4, 3)));
    }

    #[test]
    fn a_kernel_larger_than_the_padded_input_names_the_dimension() {
        let error = Conv2dGeometry::square(5).with_padding(1).output_size(9, 2).expect_err("too narrow");
        assert_eq!(
            error.to_string(),
            "kernel 5 (dilated extent 5) is larger than the padded width 4 (input 2 + 2·padding 1)"
        );
        let error = Conv2dGeometry::square(3).with_dilation(3).output_size(6, 9).expect_err("too short");
        assert!(error.to_string().contains("padded height 6"), "{error}");
    }

    #[test]
    fn zero_settings_and_bad_groups_are_named() {
        assert_eq!(
            Conv2dGeometry::square(3).with_stride(0).output_size(5, 5),
            Err(ShapeError::Zero { setting: "stride" })
        );
        let error = Conv2dGeometry::square(1)
            .with_groups(2)
            .check_groups(3, 4)
            .expect_err("3 channels into 2 groups");
        assert_eq!(error.to_string(), "input channels 3 is not divisible by groups 2");
    }
}
