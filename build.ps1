# Radlads build script for Windows / PowerShell: the same steps as build.sh.
#   ./build.ps1 build | test | run ARGS... | format | publish [RID] | test-publish
param([Parameter(Position = 0)][string]$Command = "build", [Parameter(ValueFromRemainingArguments = $true)][string[]]$Rest = @())
$ErrorActionPreference = "Stop"
Set-Location $PSScriptRoot
$env:DOTNET_CLI_TELEMETRY_OPTOUT = "1"; $env:DOTNET_NOLOGO = "1"

function Invoke-Checked([string]$File, [string[]]$Arguments) {
    & $File @Arguments
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}

switch ($Command) {
    "build" { Invoke-Checked dotnet @("build", "Radlads.sln", "-c", "Release") }
    "test" {
        Invoke-Checked dotnet @("build", "Radlads.sln", "-c", "Release")
        $log = & dotnet test --solution Radlads.sln -c Release --no-build @Rest 2>&1 | Tee-Object -Variable output
        $status = $LASTEXITCODE
        $passed = 0; $failed = 0; $skipped = 0
        foreach ($line in $output) {
            if ("$line" -match '^\s*succeeded:\s*(\d+)') { $passed += [int]$Matches[1] }
            if ("$line" -match '^\s*failed:\s*(\d+)') { $failed += [int]$Matches[1] }
            if ("$line" -match '^\s*skipped:\s*(\d+)') { $skipped += [int]$Matches[1] }
        }
        Write-Output "$passed passed, $failed failed, $skipped skipped"
        exit $status
    }
    "run" { Invoke-Checked dotnet (@("run", "--project", "src/Radlads.Cli", "-c", "Release", "--") + $Rest) }
    "format" { Invoke-Checked dotnet @("format", "Radlads.sln", "--verify-no-changes") }
    "publish" {
        $rid = if ($Rest.Count -gt 0) { $Rest[0] } else { "win-x64" }
        Invoke-Checked dotnet @("publish", "src/Radlads.Cli", "-c", "Release", "-r", $rid, "--self-contained", "-o", "artifacts/publish/$rid")
    }
    "test-publish" { Invoke-Checked dotnet @("publish", "tests/Radlads.Tests", "-c", "Release", "-r", "linux-x64", "--self-contained", "-o", ".gpu/tests") }
    default { Write-Error "usage: ./build.ps1 build | test | run ARGS... | format | publish [RID] | test-publish"; exit 2 }
}
