"""Model choice fields that read ids through `hokusai_portal.query.object_id` first: Django's own pass
"99999999999999999999999" to the database, where it overflows (OverflowError on SQLite, a DataError on
PostgreSQL: a 500). Here it is an ordinary "not one of the choices" error on the field."""

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Model

from .query import object_id


class ModelIdChoiceField(forms.ModelChoiceField):
    def to_python(self, value):
        if value not in self.empty_values and not isinstance(value, Model) and object_id(value) is None:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class ModelIdMultipleChoiceField(forms.ModelMultipleChoiceField):
    def _check_values(self, value):
        for pk in value:
            if object_id(pk) is None:
                raise ValidationError(
                    self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": pk}
                )
        return super()._check_values(value)
