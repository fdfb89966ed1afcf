"""Inputs: what a run reads, as record paths and image bytes. Imports only sigrl.tagging.records.

    plan.py        plan_inputs: classify folders, files, path lists, tar shards, tables -> InputPlan
    files.py       discover: image files under folders and path lists, sorted, deduplicated
    webdataset.py  WebDataset tar shards, streamed: one Member per sample
    tables.py      Parquet tables, one row group at a time: one Member per row
    braces.py      brace patterns in shard names (shards/{00000..00099}.tar)
    member.py      Member: one image inside a container (record path, bytes, meta)
"""

from sigrl.tagging.inputs.files import Discovery, discover
from sigrl.tagging.inputs.member import Member
from sigrl.tagging.inputs.plan import Container, InputPlan, count_container, iter_container, iter_members, plan_inputs

__all__ = [
    "Container", "Discovery", "InputPlan", "Member", "count_container", "discover", "iter_container", "iter_members",
    "plan_inputs",
]
