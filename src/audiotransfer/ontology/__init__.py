"""AudioSet ontology, segment lists and controlled pre-training subsets (saved as manifests)."""

from audiotransfer.ontology.fetch import fetch_file, fetch_metadata, fetch_ontology
from audiotransfer.ontology.ontology import Ontology, OntologyClass, load_ontology, read_label_index
from audiotransfer.ontology.segments import Availability, SegmentList, filter_available, read_segments
from audiotransfer.ontology.subsets import (
    SubsetSpec,
    build_subset,
    build_subsets,
    category_labels,
    describe_manifest,
    load_subset_file,
    summary_table,
)

__all__ = [
    "Availability",
    "Ontology",
    "OntologyClass",
    "SegmentList",
    "SubsetSpec",
    "build_subset",
    "build_subsets",
    "category_labels",
    "describe_manifest",
    "fetch_file",
    "fetch_metadata",
    "fetch_ontology",
    "filter_available",
    "load_ontology",
    "load_subset_file",
    "read_label_index",
    "read_segments",
    "summary_table",
]
