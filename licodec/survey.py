"""What the survey N83058 lists beside its schemes: its references, the public implementations of each scheme,
and the datasets used to train and evaluate learned image codecs.

The survey's implementation and dataset tables were pictures; the rows below are written from the papers and the
projects' own pages.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The survey's references [1]-[7] and the tools licodec implements, shortened to authors, title, venue.
REFERENCES = {
    1: "Toderici et al., Variable Rate Image Compression with Recurrent Neural Networks, ICLR 2016",
    2: "Toderici et al., Full Resolution Image Compression with Recurrent Neural Networks, CVPR 2017",
    3: "Theis et al., Lossy Image Compression with Compressive Autoencoders, ICLR 2017",
    4: "Ballé, Laparra, Simoncelli, End-to-end Optimized Image Compression, ICLR 2017",
    5: "Ballé et al., Variational Image Compression with a Scale Hyperprior, ICLR 2018",
    6: "Rippel, Bourdev, Real-Time Adaptive Image Compression, ICML 2017",
    7: "Agustsson et al., Generative Adversarial Networks for Extreme Learned Image Compression, ICCV 2019",
    10: "Dumas, Roumy, Guillemot, Autoencoder based Image Compression: can the Learning be Quantization "
        "Independent?, ICASSP 2018",
    11: "Zhao, Liao, CAE-ADMM: Implicit Bitrate Optimization via ADMM-Based Pruning in Compressive "
        "Autoencoders, arXiv 1901.07196",
    12: "Cai, Zhang, Deep Image Compression with Iterative Non-Uniform Quantization, ICIP 2018",
    13: "Agustsson et al., Soft-to-Hard Vector Quantization for End-to-End Learning Compressible "
        "Representations, NeurIPS 2017",
    14: "Ballé, Laparra, Simoncelli, End-to-end Optimization of Nonlinear Transform Codes for Perceptual "
        "Quality, PCS 2016",
    15: "Ballé, Laparra, Simoncelli, Density Modeling of Images using a Generalized Normalization "
        "Transformation, ICLR 2016",
    16: "Ballé, Efficient Nonlinear Transforms for Lossy Image Compression, PCS 2018",
    17: "Mentzer et al., Conditional Probability Models for Deep Image Compression, CVPR 2018",
    18: "Minnen et al., Image-Dependent Local Entropy Models for Learned Image Compression, ICIP 2018",
    19: "Lee, Cho, Beack, Context-adaptive Entropy Model for End-to-end Optimized Image Compression, ICLR 2019",
    23: "Minnen, Ballé, Toderici, Joint Autoregressive and Hierarchical Priors for Learned Image Compression, "
        "NeurIPS 2018",
}


#: Public software implementations of the survey's schemes that we know of (official ones first).
IMPLEMENTATIONS = {
    1: ["tensorflow/models research/compression (official, TensorFlow; archived)"],
    2: ["tensorflow/models research/compression (official, TensorFlow; archived)"],
    3: ["no official release; unofficial PyTorch re-implementations on GitHub"],
    4: ["tensorflow/compression models/bls2017.py (official, TensorFlow Compression)",
        "InterDigitalInc/CompressAI bmshj2018-factorized (PyTorch)"],
    5: ["tensorflow/compression models/bmshj2018.py (official, TensorFlow Compression)",
        "InterDigitalInc/CompressAI bmshj2018-hyperprior, mbt2018-mean (PyTorch)"],
    6: ["no public implementation (WaveOne, proprietary)"],
    7: ["no official release; HiFiC (tensorflow/compression models/hific) is its successor"],
    17: ["fab-jul/imgcomp-cvpr (official, TensorFlow)"],
    19: ["JooyoungLeeETRI/CA_Entropy_Model (official, TensorFlow)"],
    23: ["InterDigitalInc/CompressAI mbt2018 (PyTorch)"],
}


@dataclass(frozen=True)
class DatasetRow:
    """A dataset of the field: what it holds and what it is used for."""

    name: str
    images: str
    resolution: str
    use: str
    source: str


DATASETS = (
    DatasetRow("Kodak", "24", "768x512 (and 512x768)", "evaluation (the field's common test set)",
               "r0k.us/graphics/kodak"),
    DatasetRow("CLIC 2020 professional", "41 validation, 250 test", "up to 2048 per side", "evaluation",
               "compression.cc"),
    DatasetRow("CLIC 2020 mobile", "61 validation, 178 test", "up to 2048 per side", "evaluation",
               "compression.cc"),
    DatasetRow("Tecnick SAMPLING", "100", "1200x1200", "evaluation", "testimages.org"),
    DatasetRow("DIV2K", "800 train, 100 validation", "2K", "training and evaluation",
               "data.vision.ee.ethz.ch/cvl/DIV2K"),
    DatasetRow("ImageNet", "1.2 million", "about 400x350", "training (Ballé et al. [4], [5]; Toderici [2])",
               "image-net.org"),
    DatasetRow("Open Images", "9 million", "varies, large", "training (Minnen [23], Mentzer's HiFiC)",
               "storage.googleapis.com/openimages"),
    DatasetRow("Cityscapes / ADE20K", "5 000 / 25 000", "2048x1024 / varies",
               "training with semantic maps (Agustsson [7])", "cityscapes-dataset.com / ADE20K"),
    DatasetRow("BSDS500", "500", "481x321", "training (licodec's shipped models)", "Berkeley segmentation"),
    DatasetRow("Urban100", "100", "about 1024x768", "training (licodec's shipped models)",
               "Huang et al. 2015"),
)
