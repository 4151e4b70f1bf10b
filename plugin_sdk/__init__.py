"""The CMS plugin SDK: the ABI definition, the `cms-plugin` CLI and the guest libraries."""
