"""Datasets: folders of images and random training crops."""

from licodec.data.folder import IMAGE_SUFFIXES, CropSampler, list_images

__all__ = ["IMAGE_SUFFIXES", "CropSampler", "list_images"]
