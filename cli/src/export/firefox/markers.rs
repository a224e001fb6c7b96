//! The marker types of the Firefox Profiler export: regions and blocked stretches (interval
//! markers named after the region or the call), log messages and image starts by `exec`
//! (instant markers).

use fxprof_processed_profile::{
    CategoryHandle, MarkerFieldFlags, MarkerFieldFormat, MarkerLocations, Profile, StaticSchemaMarker, StaticSchemaMarkerField, StringHandle,
};

/// A `sigtrace_region_begin`/`_end` pair of one thread: an interval marker named after the
/// region; `depth` counts the regions of the thread open around it (0: outermost).
pub struct RegionMarker {
    pub name: StringHandle,
    pub depth: u32,
    pub category: CategoryHandle,
}

impl StaticSchemaMarker for RegionMarker {
    const UNIQUE_MARKER_TYPE_NAME: &'static str = "SigtraceRegion";
    const DESCRIPTION: Option<&'static str> = Some("A region of the program (sigtrace_region_begin / sigtrace_region_end)");
    const LOCATIONS: MarkerLocations = MarkerLocations::MARKER_CHART.union(MarkerLocations::MARKER_TABLE).union(MarkerLocations::TIMELINE_OVERVIEW);
    const CHART_LABEL: Option<&'static str> = Some("{marker.name}");
    const TABLE_LABEL: Option<&'static str> = Some("region {marker.name} (depth {marker.data.depth})");
    const FIELDS: &'static [StaticSchemaMarkerField] =
        &[StaticSchemaMarkerField { key: "depth", label: "Depth", format: MarkerFieldFormat::Integer, flags: MarkerFieldFlags::empty() }];

    fn name(&self, _profile: &mut Profile) -> StringHandle {
        self.name
    }

    fn category(&self, _profile: &mut Profile) -> CategoryHandle {
        self.category
    }

    fn string_field_value(&self, _field_index: u32) -> StringHandle {
        // The schema has no string field; the crate only asks for the fields it declares.
        self.name
    }

    fn number_field_value(&self, _field_index: u32) -> f64 {
        f64::from(self.depth)
    }
}

/// A stretch of wall time a thread of a `wall` trace spent blocked in one call: an interval
/// marker named `blocked: CALL`, with the call and the samples it was seen in.
pub struct BlockedMarker {
    pub name: StringHandle,
    pub call: StringHandle,
    pub samples: u64,
    pub category: CategoryHandle,
}

impl StaticSchemaMarker for BlockedMarker {
    const UNIQUE_MARKER_TYPE_NAME: &'static str = "SigtraceBlocked";
    const DESCRIPTION: Option<&'static str> = Some("The thread was blocked in a call (wall-clock mode)");
    const LOCATIONS: MarkerLocations = MarkerLocations::MARKER_CHART.union(MarkerLocations::MARKER_TABLE).union(MarkerLocations::TIMELINE_OVERVIEW);
    const CHART_LABEL: Option<&'static str> = Some("{marker.data.call}");
    const TABLE_LABEL: Option<&'static str> = Some("blocked in {marker.data.call} ({marker.data.samples} samples)");
    const FIELDS: &'static [StaticSchemaMarkerField] = &[
        StaticSchemaMarkerField { key: "call", label: "Call", format: MarkerFieldFormat::String, flags: MarkerFieldFlags::SEARCHABLE },
        StaticSchemaMarkerField { key: "samples", label: "Samples", format: MarkerFieldFormat::Integer, flags: MarkerFieldFlags::empty() },
    ];

    fn name(&self, _profile: &mut Profile) -> StringHandle {
        self.name
    }

    fn category(&self, _profile: &mut Profile) -> CategoryHandle {
        self.category
    }

    fn string_field_value(&self, _field_index: u32) -> StringHandle {
        // The only string field.
        self.call
    }

    fn number_field_value(&self, _field_index: u32) -> f64 {
        // The only number field.
        self.samples as f64
    }
}

/// A `sigtrace_log(category, text)` message: an instant marker named after its category.
pub struct LogMarker {
    pub name: StringHandle,
    pub log_category: StringHandle,
    pub text: StringHandle,
    pub category: CategoryHandle,
}

impl StaticSchemaMarker for LogMarker {
    const UNIQUE_MARKER_TYPE_NAME: &'static str = "SigtraceLog";
    const DESCRIPTION: Option<&'static str> = Some("A message logged with sigtrace_log");
    const LOCATIONS: MarkerLocations = MarkerLocations::MARKER_CHART.union(MarkerLocations::MARKER_TABLE).union(MarkerLocations::TIMELINE_OVERVIEW);
    const CHART_LABEL: Option<&'static str> = Some("{marker.data.text}");
    const TOOLTIP_LABEL: Option<&'static str> = Some("{marker.data.category}: {marker.data.text}");
    const TABLE_LABEL: Option<&'static str> = Some("{marker.data.category}: {marker.data.text}");
    const FIELDS: &'static [StaticSchemaMarkerField] = &[
        StaticSchemaMarkerField { key: "category", label: "Category", format: MarkerFieldFormat::String, flags: MarkerFieldFlags::SEARCHABLE },
        StaticSchemaMarkerField { key: "text", label: "Message", format: MarkerFieldFormat::String, flags: MarkerFieldFlags::SEARCHABLE },
    ];

    fn name(&self, _profile: &mut Profile) -> StringHandle {
        self.name
    }

    fn category(&self, _profile: &mut Profile) -> CategoryHandle {
        self.category
    }

    fn string_field_value(&self, field_index: u32) -> StringHandle {
        if field_index == 0 {
            self.log_category
        } else {
            self.text
        }
    }

    fn number_field_value(&self, _field_index: u32) -> f64 {
        // The schema has no number field.
        0.0
    }
}

/// The start of a later image of a process (`exec`): an instant marker on its main thread
/// with the new command line.
pub struct ExecMarker {
    pub name: StringHandle,
    pub command: StringHandle,
    pub category: CategoryHandle,
}

impl StaticSchemaMarker for ExecMarker {
    const UNIQUE_MARKER_TYPE_NAME: &'static str = "SigtraceExec";
    const DESCRIPTION: Option<&'static str> = Some("The process started a new program image (exec)");
    const LOCATIONS: MarkerLocations = MarkerLocations::MARKER_CHART.union(MarkerLocations::MARKER_TABLE).union(MarkerLocations::TIMELINE_OVERVIEW);
    const CHART_LABEL: Option<&'static str> = Some("{marker.data.command}");
    const TABLE_LABEL: Option<&'static str> = Some("exec {marker.data.command}");
    const FIELDS: &'static [StaticSchemaMarkerField] =
        &[StaticSchemaMarkerField { key: "command", label: "Command", format: MarkerFieldFormat::String, flags: MarkerFieldFlags::SEARCHABLE }];

    fn name(&self, _profile: &mut Profile) -> StringHandle {
        self.name
    }

    fn category(&self, _profile: &mut Profile) -> CategoryHandle {
        self.category
    }

    fn string_field_value(&self, _field_index: u32) -> StringHandle {
        self.command
    }

    fn number_field_value(&self, _field_index: u32) -> f64 {
        // The schema has no number field.
        0.0
    }
}
