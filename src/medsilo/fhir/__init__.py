"""FHIR R4 sites: bundles of Patient, Observation, Condition and MedicationStatement resources
mapped onto the federation schema (docs/fhir.md)."""
