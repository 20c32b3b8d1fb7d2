//! Reference architectures, as dfdx builder types.

use dfdx::nn::builders::{Linear, ReLU};

use crate::nn::builders::{Conv2D, Flatten2D, MaxPool2D};

/// LeNet-5 (LeCun et al., *Gradient-Based Learning Applied to Document Recognition*, 1998) in
/// its common modern form: ReLU and max-pooling, 28×28 input padded to keep the first map at
/// 28×28. Input `(B, 1, 28, 28)`, output `(B, 10)` logits. 61,706 parameters.
pub type LeNet5 = (
    (Conv2D<1, 6, 5, 1, 2>, ReLU, MaxPool2D<2, 2>),
    (Conv2D<6, 16, 5>, ReLU, MaxPool2D<2, 2>),
    Flatten2D<400>,
    (Linear<400, 120>, ReLU, Linear<120, 84>, ReLU, Linear<84, 10>),
);
