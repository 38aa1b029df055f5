using System.Text.Json.Serialization;

namespace Radlads.Training;

/// <summary>Source-generated JSON for the checkpoint header (trim- and AOT-safe).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(TrainingOptions))]
[JsonSerializable(typeof(TrainingState))]
internal sealed partial class TrainingJson : JsonSerializerContext;
