export { classifyError, VALIDATOR_EXIT_CODES, ValidatorError, ZeroShotClassifier, type LabelScore, type ValidatorErrorKind, type ZeroShotOptions } from './zero-shot.js';
export { sample, SERVICE_DESCRIPTIONS, validateAgainstZeroShot, type Classifier, type ValidationReport } from './validate.js';
export { describeReferenceModel, HF_MCP_TOOLS, parseHubNumber, parseModelDetails, referenceModelSchema, searchHits, ZERO_SHOT_TASK, type ReferenceModel } from './reference.js';
