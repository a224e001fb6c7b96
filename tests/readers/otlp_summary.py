"""Reads an OTLP ExportProfilesServiceRequest (`sigtrace export --format otlp`) with the official
`opentelemetry-proto` package and prints what the tests check, as one JSON object: per resource
its attributes and profile (sample type, period, time range, records, values, timestamps inside
the range), per function the value of the samples whose stack holds it (each function once per
stack), and whether every table starts with its null entry, every index points into its table
and every location carries one `profile.frame.type` (the functions of each type are listed). Usage: python otlp_summary.py FILE"""
import json
import sys

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.profiles.v1development.profiles_service_pb2 import ExportProfilesServiceRequest

request = ExportProfilesServiceRequest()
with open(sys.argv[1], "rb") as f:
    request.ParseFromString(f.read())
d = request.dictionary
s = d.string_table
problems = []
frame_types = {}


def check(ok, what):
    if not ok and what not in problems:
        problems.append(what)


check(s[0] == "", "string_table[0] is not empty")
for name in ["mapping_table", "location_table", "function_table", "link_table", "attribute_table", "stack_table"]:
    table = getattr(d, name)
    check(len(table) > 0 and table[0].ByteSize() == 0, f"{name}[0] is not the null entry")


def attribute(index):
    check(0 < index < len(d.attribute_table), "attribute index out of range")
    a = d.attribute_table[index]
    return s[a.key_strindex], MessageToDict(a.value)


for location in d.location_table[1:]:
    check(location.mapping_index < len(d.mapping_table), "mapping index out of range")
    check(len(location.lines) > 0, "a location without lines")
    for line in location.lines:
        check(0 < line.function_index < len(d.function_table), "function index out of range")
    types = [value.get("stringValue") for key, value in map(attribute, location.attribute_indices) if key == "profile.frame.type"]
    check(len(types) == 1 and types[0], "a location without one profile.frame.type")
    for line in location.lines:
        frame_types.setdefault(types[0] if types else None, set()).add(s[d.function_table[line.function_index].name_strindex])
build_ids = {}
for mapping in d.mapping_table[1:]:
    for key, value in map(attribute, mapping.attribute_indices):
        if key == "process.executable.build_id.gnu":
            build_ids[s[mapping.filename_strindex]] = value["stringValue"]


def functions_of(stack_index):
    check(0 < stack_index < len(d.stack_table), "stack index out of range")
    names = []
    for location_index in d.stack_table[stack_index].location_indices:
        check(0 < location_index < len(d.location_table), "location index out of range")
        for line in d.location_table[location_index].lines:
            names.append(s[d.function_table[line.function_index].name_strindex])
    return names


resources = []
by_function = {}
for rp in request.resource_profiles:
    attributes = {a.key: MessageToDict(a.value) for a in rp.resource.attributes}
    for sp in rp.scope_profiles:
        for p in sp.profiles:
            records = values = 0
            start, end = p.time_unix_nano, p.time_unix_nano + p.duration_nano
            threads = set()
            for sample in p.samples:
                check(len(sample.values) == len(sample.timestamps_unix_nano), "values and timestamps differ in length")
                check(all(start <= t <= end for t in sample.timestamps_unix_nano), "a timestamp outside the profile's time range")
                records += len(sample.timestamps_unix_nano)
                values += sum(sample.values)
                sample_attributes = dict(map(attribute, sample.attribute_indices))
                threads.add(int(sample_attributes["thread.id"]["intValue"]))
                for name in set(functions_of(sample.stack_index)):
                    by_function[name] = by_function.get(name, 0) + sum(sample.values)
            resources.append({
                "attributes": attributes,
                "scope": sp.scope.name,
                "sample_type": [s[p.sample_type.type_strindex], s[p.sample_type.unit_strindex]],
                "period_type": [s[p.period_type.type_strindex], s[p.period_type.unit_strindex]],
                "period": p.period,
                "records": records,
                "values": values,
                "threads": sorted(threads),
            })
frame_types = {str(kind): sorted(names) for kind, names in frame_types.items()}
print(json.dumps({"frame_types": frame_types, "resources": resources, "by_function": by_function, "build_ids": build_ids, "problems": problems}))
