"""Only the worker links the compute libraries.

The edges (the frontend, the balancer, the `fulcrum` CLI) share the model's schema with the
worker through FulcrumSchema, not FulcrumRuntime (Package.swift, docs/architecture.md), so a
host or image that runs only them needs neither OpenBLAS nor the Vulkan loader. `ldd` lists
every shared library a binary loads, its dependencies' too. test_vulkan.py serves through the
Vulkan loader that the worker opens at run time.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from conftest import binary

MATH_LIBRARIES = re.compile(r"^\s*(libopenblas[^ ]*|libvulkan[^ ]*|libblas[^ ]*|liblapack[^ ]*)\s", re.M)


def loaded_libraries(name: str) -> str:
    result = subprocess.run(["ldd", binary(name)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"ldd {name}: {result.stderr}"
    return result.stdout


@pytest.mark.parametrize("name", ["fulcrum-frontend", "fulcrum-balancer", "fulcrum"])
def test_edges_do_not_link_openblas_or_vulkan(name):
    found = MATH_LIBRARIES.findall(loaded_libraries(name))
    assert not found, f"{name} links {sorted(set(found))}: an edge must not carry the math libraries"


def test_the_worker_links_openblas_and_opens_vulkan_only_when_asked():
    # The check above can see these libraries: the worker, which runs the CPU kernels, loads
    # OpenBLAS. The Vulkan loader it opens with dlopen for --backend vulkan only
    # (Sources/CVulkan), so no binary links it and a CPU-only host needs no libvulkan1.
    found = set(MATH_LIBRARIES.findall(loaded_libraries("fulcrum-worker")))
    assert any(lib.startswith("libopenblas") for lib in found), found
    assert not any(lib.startswith("libvulkan") for lib in found), found
